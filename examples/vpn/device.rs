//! The TUN device: created with `tun-rs`, addressed, and routed.
//!
//! `tun-rs` creates the device, sets its MTU and adds its addresses; the routes' `mtu` and
//! `advmss` attributes (which keep packets within one ring datagram) are set with iproute2's
//! `ip`, as `tun-rs` has no call for them.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::Command;

use anyhow::{Context, bail};
use tun_rs::{AsyncDevice, DeviceBuilder};

use crate::addr::{ADVMSS_V6, DEVICE_MTU, ONE_DATAGRAM, V4_NET, V4_PREFIX_LEN, V6_PREFIX_LEN};

/// Fails with a clear message unless we hold CAP_NET_ADMIN (effective), which creating and
/// configuring a network device needs.
pub fn check_capability() -> anyhow::Result<()> {
    const CAP_NET_ADMIN: u32 = 12;
    let status = std::fs::read_to_string("/proc/self/status").context("read /proc/self/status")?;
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .context("no CapEff line in /proc/self/status")?;
    if eff & (1 << CAP_NET_ADMIN) == 0 {
        bail!(
            "`vpn up` needs CAP_NET_ADMIN to create and configure its TUN device: run it as \
             root, or grant the binary the capability (`setcap cap_net_admin+ep PATH`)"
        );
    }
    Ok(())
}

/// Creates `ifname` with our IPv6 (and IPv4), up, with its routes.
pub fn create(ifname: &str, ip6: Ipv6Addr, ip4: Option<Ipv4Addr>) -> anyhow::Result<AsyncDevice> {
    let dev = DeviceBuilder::new()
        .name(ifname)
        .mtu(DEVICE_MTU)
        .enable(true)
        .build_async()
        .map_err(|e| explain_create(e, ifname))?;
    // The device may start with IPv6 off (`net.ipv6.conf.default.disable_ipv6=1`): turn it on
    // for this device alone. No duplicate address detection: the address is ours by
    // construction, and a tentative address cannot be bound to at once.
    sysctl_v6(ifname, "disable_ipv6", "0")?;
    sysctl_v6(ifname, "accept_dad", "0")?;
    // Without IPv6 on `lo`, this host's own programs cannot reach our VPN address (local
    // traffic loops through `lo`), e.g. the DNS responder on it.
    if std::fs::read_to_string("/proc/sys/net/ipv6/conf/lo/disable_ipv6")
        .is_ok_and(|v| v.trim() == "1")
    {
        tracing::warn!("IPv6 was off on lo; turning it on so local programs reach our VPN address");
        sysctl_v6("lo", "disable_ipv6", "0")?;
    }
    dev.add_address_v6(ip6, V6_PREFIX_LEN)
        .with_context(|| format!("add {ip6}/{V6_PREFIX_LEN} to {ifname}"))?;
    let net6 = Ipv6Addr::from(u128::from(ip6) & !(u128::MAX >> V6_PREFIX_LEN));
    ip(&[
        "-6",
        "route",
        "replace",
        &format!("{net6}/{V6_PREFIX_LEN}"),
        "dev",
        ifname,
        "proto",
        "kernel",
        "metric",
        "256",
        "advmss",
        &ADVMSS_V6.to_string(),
    ])?;
    if let Some(ip4) = ip4 {
        add_v4(ifname, ip4)?;
    }
    Ok(dev)
}

/// Adds `ip4` (and the route to the whole range, with an MTU that fits one datagram).
pub fn add_v4(ifname: &str, ip4: Ipv4Addr) -> anyhow::Result<()> {
    ip(&[
        "addr",
        "replace",
        &format!("{ip4}/{V4_PREFIX_LEN}"),
        "dev",
        ifname,
    ])?;
    ip(&[
        "route",
        "replace",
        &format!("{V4_NET}/{V4_PREFIX_LEN}"),
        "dev",
        ifname,
        "proto",
        "kernel",
        "scope",
        "link",
        "src",
        &ip4.to_string(),
        "mtu",
        &ONE_DATAGRAM.to_string(),
    ])
}

/// Removes `ip4` from the device (its route goes with it).
pub fn remove_v4(ifname: &str, ip4: Ipv4Addr) -> anyhow::Result<()> {
    ip(&[
        "addr",
        "del",
        &format!("{ip4}/{V4_PREFIX_LEN}"),
        "dev",
        ifname,
    ])
}

fn explain_create(e: io::Error, ifname: &str) -> anyhow::Error {
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => anyhow::anyhow!(
            "cannot create TUN device {ifname}: {e}. Creating and configuring a network device \
             needs CAP_NET_ADMIN: run `vpn up` as root, or grant the binary the capability \
             (`setcap cap_net_admin+ep PATH`)"
        ),
        Some(libc::ENOENT) | Some(libc::ENODEV) => anyhow::anyhow!(
            "cannot create TUN device {ifname}: {e}. /dev/net/tun is missing: load the `tun` \
             kernel module (`modprobe tun`)"
        ),
        Some(libc::EBUSY) | Some(libc::EEXIST) => anyhow::anyhow!(
            "cannot create TUN device {ifname}: {e}. Another program holds a device of that \
             name (another `vpn up`?); pick another with --ifname"
        ),
        _ => anyhow::anyhow!("cannot create TUN device {ifname}: {e}"),
    }
}

fn sysctl_v6(ifname: &str, key: &str, value: &str) -> anyhow::Result<()> {
    let path = format!("/proc/sys/net/ipv6/conf/{ifname}/{key}");
    std::fs::write(&path, value).with_context(|| format!("set {path} to {value}"))
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("run `ip` (iproute2)")?;
    if !out.status.success() {
        bail!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
