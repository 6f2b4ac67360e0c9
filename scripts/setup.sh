#!/usr/bin/env bash
# Prepares a fresh Debian bookworm machine (as root) to build, run and test xdp-ids, and builds it.
# Idempotent and quick when everything is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $EUID -ne 0 ]]; then
  echo "setup.sh: run as root (it installs packages, and the sensor needs CAP_BPF and CAP_NET_ADMIN)" >&2
  exit 1
fi

APT_PACKAGES=(
  clang llvm make g++ python3 pkg-config libbpf-dev libelf-dev zlib1g-dev bpftool  # BPF object + addon
  iproute2 iputils-ping xdp-tools                          # veth/netns labs, the benchmark peer
  nmap hping3 iperf3 wrk curl tshark                       # real attack and benign traffic
  python3-scapy tcpreplay masscan                          # the detection eval's captures (lab/eval/captures.py) and scans
  redis-server openssl docker-compose                      # openssl: the Redis TLS tests make their certificates
  chromium                                                 # the dashboard's tests drive it (playwright-core)
  prometheus                                               # for promtool only: checks and unit-tests deploy/prometheus/
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup.sh: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The package starts a Prometheus server on :9090; only its promtool is wanted here.
  if [[ " ${missing[*]} " == *" prometheus "* && -d /run/systemd/system ]]; then
    systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
fi

if ! mount | grep -q ' /sys/fs/bpf type bpf'; then
  mount -t bpf bpf /sys/fs/bpf
fi

# `npm install` from the lock rather than `npm ci`: npm 11.16+ writes lockfiles without the other
# platforms' optional packages (jest's resolver bindings) and then `npm ci` rejects them (npm/cli#9846).
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm install --no-save --no-audit --no-fund --loglevel=error
fi

npm run --silent build:bpf
if [[ ! -f native/build/Release/xdp_ids_native.node ]] || [[ -n "$(find native/src native/binding.gyp -newer native/build/Release/xdp_ids_native.node)" ]]; then
  npm run --silent build:native >/dev/null
fi
npm run --silent build:ts
npm run --silent build:web
