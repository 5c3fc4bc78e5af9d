# Sourced by scripts/test and scripts/dev-up: the Debian packages the dataplane and its tests need
# (wireguard-go where the kernel has no WireGuard module, iptables/nftables for SNAT, iproute2 for
# ip and ss, procps for sysctl, util-linux for nsenter, wireguard-tools'
# `wg` for the CNI plugin's kernel WireGuard path, nodejs for the trace page's script test; tests/fixtures/host_requirements.py checks
# the same list). Installs only what is missing, and only as root; without root the tests that
# need root fail unless EGRESSGW_SKIP_ROOT_TESTS=1 (README.md, Development).
set -euo pipefail
_egressgw_missing=()
command -v wireguard-go >/dev/null 2>&1 || [ -x /usr/bin/wireguard-go ] || _egressgw_missing+=(wireguard-go)
command -v iptables-restore >/dev/null 2>&1 || [ -x /usr/sbin/iptables-restore ] || _egressgw_missing+=(iptables)
command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || _egressgw_missing+=(nftables)
command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || _egressgw_missing+=(iproute2)
command -v sysctl >/dev/null 2>&1 || [ -x /usr/sbin/sysctl ] || [ -x /sbin/sysctl ] || _egressgw_missing+=(procps)
command -v nsenter >/dev/null 2>&1 || [ -x /usr/bin/nsenter ] || _egressgw_missing+=(util-linux)
command -v wg >/dev/null 2>&1 || [ -x /usr/bin/wg ] || _egressgw_missing+=(wireguard-tools)
command -v node >/dev/null 2>&1 || _egressgw_missing+=(nodejs)
if [ "${#_egressgw_missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "system packages: installing ${_egressgw_missing[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq --no-install-recommends "${_egressgw_missing[@]}" >&2
    else
        echo "system packages: missing ${_egressgw_missing[*]} (install them as root for the network tests)" >&2
    fi
fi
unset _egressgw_missing
