#!/usr/bin/env bash
# Installs what chamber's lab, demo and tests need on a fresh Debian machine (run as root).
# Idempotent: safe to run again. Servers are installed but NOT started as system services: the lab
# starts its own instances inside network namespaces.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: run this as root (sudo $0): it installs Debian packages" >&2
  exit 1
fi

packages=(
  prosody lua-unbound          # XMPP server 1 (alpha.lab)
  ejabberd                     # XMPP server 2 (beta.lab)
  coturn                       # STUN/TURN with RFC 5780 behaviour discovery
  iproute2 nftables iptables conntrack procps util-linux iputils-ping  # namespaces and NATs
  openssl ca-certificates pkg-config
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  # Keep the packages' own services from starting: the lab runs its own instances.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Stop system instances a previous install may have started (they are not needed).
for svc in prosody ejabberd coturn; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" || true
  fi
done

if ! command -v cargo >/dev/null 2>&1; then
  echo "install-deps: cargo is missing: install Rust (https://rustup.rs), then run this again" >&2
  exit 1
fi
echo "install-deps: all set"
