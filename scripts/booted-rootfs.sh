#!/usr/bin/env bash
# The root file system of the booted test hosts (Debian bookworm with systemd,
# sshd, sudo and Debian's etcd packages), built once with debootstrap and kept
# in a cache folder outside the repository; later runs on the same machine
# reuse it. The folder's name carries a hash of the package list and of this
# script, so changing either builds a new one. Prints the root's path.
#
# Usage: scripts/booted-rootfs.sh            # build if missing, print the path
#        ETCDPLAN_ROOTFS_CACHE=DIR ...       # cache folder (default /var/cache/etcdplan-testbed)
set -euo pipefail

cache="${ETCDPLAN_ROOTFS_CACHE:-/var/cache/etcdplan-testbed}"
include="systemd,systemd-sysv,dbus,openssh-server,iproute2,sudo,etcd-server,etcd-client"
suite="bookworm"
# The mirror apt already uses (deb822 first, then the one-line format).
mirror="$(sed -n 's/^URIs: *\(http[^ ]*\/debian\)\/*$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1 || true)"
if [ -z "$mirror" ]; then
    mirror="$(sed -n 's/^deb \(\[[^]]*\] \)*\(http[^ ]*\/debian\)\/* .*/\2/p' /etc/apt/sources.list 2>/dev/null | head -n1 || true)"
fi
mirror="${mirror:-http://deb.debian.org/debian}"

key="$(printf '%s\n%s\n%s\n' "$include" "$suite" "$(sha256sum "$0" | cut -d' ' -f1)" | sha256sum | cut -c1-12)"
root="$cache/rootfs-$suite-$key"
mkdir -p "$cache"

# One builder at a time (two test processes, or setup and a test).
exec 9>"$cache/.lock"
flock 9

if [ -f "$root/.etcdplan-complete" ]; then
    echo "$root"
    exit 0
fi

for tool in debootstrap systemd-nspawn; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "booted-rootfs: $tool missing (apt-get install debootstrap systemd-container)" >&2
        exit 1
    }
done

echo "booted-rootfs: building $root from $mirror (a few minutes, once per machine)" >&2
rm -rf "$root.partial"
start=$(date +%s)
debootstrap --variant=minbase --include="$include" "$suite" "$root.partial" "$mirror" \
    >"$cache/debootstrap.log" 2>&1 || {
    echo "booted-rootfs: debootstrap failed; last lines of $cache/debootstrap.log:" >&2
    tail -n 20 "$cache/debootstrap.log" >&2
    exit 1
}
r="$root.partial"
# Per-host ssh host keys are made when a host is set up, not baked into the image.
rm -f "$r"/etc/ssh/ssh_host_*
# Debian's etcd.service would start a one-member etcd at every boot: disabled
# in the image (not masked: a mask is a symlink at the very path etcdplan's own
# unit is written to); a test that wants it (a hand-built cluster) enables it.
rm -f "$r/etc/systemd/system/multi-user.target.wants/etcd.service" "$r/etc/systemd/system/etcd2.service"
# Quiet and quick boots: no consoles, no timers that would start work mid-test.
for unit in getty@tty1.service console-getty.service apt-daily.timer apt-daily-upgrade.timer \
    e2scrub_all.timer fstrim.timer systemd-tmpfiles-clean.timer; do
    ln -sf /dev/null "$r/etc/systemd/system/$unit"
done
# sshd: keys only; the harness's key goes in per host.
cat >"$r/etc/ssh/sshd_config.d/etcdplan-testbed.conf" <<'EOF'
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
MaxStartups 100:30:200
MaxSessions 50
EOF
# No hostname of its own (debootstrap copies this machine's): each host is
# named by systemd-nspawn --hostname.
rm -f "$r/etc/hostname"
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$r/etc/hosts"
# An empty machine-id: systemd makes one per boot (each host its own).
: >"$r/etc/machine-id"
rm -f "$r/var/lib/dbus/machine-id"
apt_clean() { rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/*; }
apt_clean
touch "$r/.etcdplan-complete"
mv "$r" "$root"
# Older builds of this cache are of no use any more.
for old in "$cache"/rootfs-*; do
    [ "$old" = "$root" ] && continue
    case "$old" in *.partial) continue ;; esac
    rm -rf "$old"
done
echo "booted-rootfs: built in $(($(date +%s) - start)) s" >&2
echo "$root"
