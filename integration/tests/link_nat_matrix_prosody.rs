//! The NAT matrix over Prosody with coturn (TURN over UDP and TCP); see `link_matrix.rs`.

#[path = "link_matrix.rs"]
mod link_matrix;

#[test]
fn every_nat_pair_links_direct_or_through_coturn() {
    link_matrix::run(link_matrix::Server {
        domain: chamber_lab::topology::ALPHA,
        label: "Prosody + coturn",
        key: "prosody",
    });
}
