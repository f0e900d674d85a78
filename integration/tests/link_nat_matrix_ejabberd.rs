//! The NAT matrix over ejabberd and its own STUN/TURN (UDP and TCP); see `link_matrix.rs`.

#[path = "link_matrix.rs"]
mod link_matrix;

#[test]
fn every_nat_pair_links_direct_or_through_ejabberd_turn() {
    link_matrix::run(link_matrix::Server {
        domain: chamber_lab::topology::BETA,
        label: "ejabberd",
        key: "ejabberd",
    });
}
