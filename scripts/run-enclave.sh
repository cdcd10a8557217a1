#!/usr/bin/env bash
# run-enclave.sh: start the nitrosign enclave on a Nitro Enclaves parent
# instance, optionally with the vsock-proxy that lets the enclave reach AWS KMS,
# and print how to start nitrosign-host against it.
#
# Run `scripts/run-enclave.sh --help` for the options. See docs/deployment.md
# for the instance setup this script expects.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" run-enclave

readonly ALLOCATOR_CONFIG="/etc/nitro_enclaves/allocator.yaml"

eif="nitrosign.eif"
cpu_count=2
memory_mib=1024
cid=16
name="nitrosign"
debug_mode=0
allow_debug=0
kms_region=""
proxy_port=8000
proxy_config="/etc/nitro_enclaves/vsock-proxy.yaml"
enclave_port=5000
host_listen="127.0.0.1:8420"

usage() {
	cat <<EOF
Usage: scripts/run-enclave.sh [options]

Start the nitrosign enclave with nitro-cli run-enclave.

Options:
  --eif FILE           enclave image file (default: nitrosign.eif)
  --cpu-count N        vCPUs for the enclave (default: 2)
  --memory MIB         memory for the enclave in MiB (default: 1024)
  --enclave-cid N      vsock CID of the enclave, 4 or more (default: 16)
  --name NAME          enclave name for nitro-cli (default: nitrosign)
  --kms-proxy REGION   also start "vsock-proxy ${proxy_port} kms.REGION.amazonaws.com 443"
                       so the enclave can reach AWS KMS (the endpoint must be
                       in the vsock-proxy allowlist)
  --proxy-port N       vsock port for the KMS proxy (default: 8000)
  --proxy-config FILE  vsock-proxy allowlist (default: ${proxy_config})
  --enclave-port N     vsock port the enclave listens on, for the host hint
                       (default: 5000)
  --host-listen ADDR   listen address for the host hint (default: ${host_listen})
  --debug-mode         start in debug mode; refused unless --allow-debug is given
  --allow-debug        allow --debug-mode (development only, see below)
  -h, --help           show this help

Debug mode: the enclave's console becomes readable from the parent, and its
attestation documents carry all-zero PCRs. KMS must refuse to unseal for it (a
key policy that pins the real PCR0 does), and clients must refuse such a
document. Never use it in production.

The enclave needs the allocator to have reserved at least the requested vCPUs
and memory: see cpu_count and memory_mib in ${ALLOCATOR_CONFIG}, then
  sudo systemctl restart nitro-enclaves-allocator.service
EOF
}

while [[ $# -gt 0 ]]; do
	case "$1" in
	--eif)
		need_value "$1" "$#"
		eif="$2"
		shift 2
		;;
	--cpu-count)
		need_value "$1" "$#"
		cpu_count="$2"
		shift 2
		;;
	--memory)
		need_value "$1" "$#"
		memory_mib="$2"
		shift 2
		;;
	--enclave-cid)
		need_value "$1" "$#"
		cid="$2"
		shift 2
		;;
	--name)
		need_value "$1" "$#"
		name="$2"
		shift 2
		;;
	--kms-proxy)
		need_value "$1" "$#"
		kms_region="$2"
		shift 2
		;;
	--proxy-port)
		need_value "$1" "$#"
		proxy_port="$2"
		shift 2
		;;
	--proxy-config)
		need_value "$1" "$#"
		proxy_config="$2"
		shift 2
		;;
	--enclave-port)
		need_value "$1" "$#"
		enclave_port="$2"
		shift 2
		;;
	--host-listen)
		need_value "$1" "$#"
		host_listen="$2"
		shift 2
		;;
	--debug-mode)
		debug_mode=1
		shift
		;;
	--allow-debug)
		allow_debug=1
		shift
		;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		die "unknown argument: $1 (see --help)"
		;;
	esac
done

need_uint --cpu-count "${cpu_count}"
need_uint --memory "${memory_mib}"
need_uint --enclave-cid "${cid}"
need_uint --proxy-port "${proxy_port}"
need_uint --enclave-port "${enclave_port}"
# CIDs 0-2 are reserved and 3 is the parent instance; 4294967295 means "any".
if [[ "${cid}" -lt 4 || "${cid}" -ge 4294967295 ]]; then
	die "--enclave-cid must be between 4 and 4294967294, got ${cid}"
fi
if [[ "${cpu_count}" -lt 1 || "${memory_mib}" -lt 64 ]]; then
	die "--cpu-count must be at least 1 and --memory at least 64 MiB"
fi

# --- debug mode (refused by default) -------------------------------------------

if [[ "${debug_mode}" -eq 1 ]]; then
	if [[ "${allow_debug}" -ne 1 ]]; then
		die "--debug-mode refused. A debug-mode enclave attests with all-zero PCRs and its console is readable from the parent; KMS must refuse to unseal for it. Add --allow-debug if this is a development instance with no real keys."
	fi
	cat >&2 <<'EOF'
run-enclave: WARNING: DEBUG MODE
  * Attestation documents from this enclave carry all-zero PCRs. AWS KMS must
    refuse to unseal for it (a key policy pinning the real PCR0 does), and
    verifiers must refuse such documents unless explicitly told otherwise.
  * `nitro-cli console` shows the enclave's output on the parent.
  * Never run a production image in debug mode, and never put an all-zero PCR0
    in a KMS key policy.
EOF
fi

# --- tools and instance setup -----------------------------------------------------

if ! command -v nitro-cli >/dev/null 2>&1; then
	die "nitro-cli not found. On Amazon Linux 2023: sudo dnf install -y aws-nitro-enclaves-cli aws-nitro-enclaves-cli-devel && sudo usermod -aG ne \"\$USER\" (then log in again). See docs/deployment.md."
fi
if [[ ! -e /dev/nitro_enclaves ]]; then
	warn "/dev/nitro_enclaves is missing: this instance was not launched with Nitro Enclaves enabled (--enclave-options 'Enabled=true'), or the nitro_enclaves driver is not loaded."
fi

if [[ ! -r "${ALLOCATOR_CONFIG}" ]]; then
	die "${ALLOCATOR_CONFIG} not found or not readable. Reserve resources for the enclave there, for example
  memory_mib: ${memory_mib}
  cpu_count: ${cpu_count}
then: sudo systemctl enable --now nitro-enclaves-allocator.service"
fi
# The allocator reserves hugepage memory and whole CPU cores at boot or when
# restarted; an enclave cannot be larger than the reservation.
alloc_value() {
	sed -n "s/^[[:space:]]*$1:[[:space:]]*\([0-9][0-9]*\)[[:space:]]*\(#.*\)\{0,1\}$/\1/p" "${ALLOCATOR_CONFIG}" | head -n 1
}
alloc_memory=$(alloc_value memory_mib)
alloc_cpus=$(alloc_value cpu_count)
if [[ -z "${alloc_memory}" ]]; then
	warn "could not read memory_mib from ${ALLOCATOR_CONFIG}; nitro-cli will fail if less than ${memory_mib} MiB is reserved."
elif [[ "${alloc_memory}" -lt "${memory_mib}" ]]; then
	die "${ALLOCATOR_CONFIG} reserves memory_mib: ${alloc_memory}, less than --memory ${memory_mib}. Raise memory_mib and run: sudo systemctl restart nitro-enclaves-allocator.service"
fi
if [[ -z "${alloc_cpus}" ]]; then
	if grep -q '^[[:space:]]*cpu_pool:' "${ALLOCATOR_CONFIG}"; then
		warn "${ALLOCATOR_CONFIG} uses cpu_pool; make sure it lists at least ${cpu_count} CPUs."
	else
		warn "could not read cpu_count from ${ALLOCATOR_CONFIG}."
	fi
elif [[ "${alloc_cpus}" -lt "${cpu_count}" ]]; then
	die "${ALLOCATOR_CONFIG} reserves cpu_count: ${alloc_cpus}, less than --cpu-count ${cpu_count}. Raise cpu_count and run: sudo systemctl restart nitro-enclaves-allocator.service"
fi
if [[ -d /run/systemd/system ]] && ! systemctl is-active --quiet nitro-enclaves-allocator.service 2>/dev/null; then
	warn "nitro-enclaves-allocator.service is not active: sudo systemctl enable --now nitro-enclaves-allocator.service"
fi

if [[ ! -f "${eif}" ]]; then
	die "enclave image not found: ${eif} (build it with scripts/build-eif.sh)"
fi
if [[ -f "${eif}.pcrs.json" ]]; then
	printf 'run-enclave: expected measurements (%s.pcrs.json):\n' "${eif}" >&2
	cat -- "${eif}.pcrs.json" >&2
fi

# --- KMS vsock-proxy (optional) ------------------------------------------------------

# A proxy this script started is stopped again unless the enclave came up.
proxy_pid=""
enclave_started=0
stop_proxy_unless_started() {
	if [[ -n "${proxy_pid}" && "${enclave_started}" -ne 1 ]]; then
		kill "${proxy_pid}" 2>/dev/null || true
	fi
}
trap stop_proxy_unless_started EXIT

if [[ -n "${kms_region}" ]]; then
	if ! [[ "${kms_region}" =~ ^[a-z]{2}(-[a-z]+)+-[0-9]+$ ]]; then
		die "--kms-proxy wants an AWS region such as us-east-1, got '${kms_region}'"
	fi
	kms_host="kms.${kms_region}.amazonaws.com"
	if ! command -v vsock-proxy >/dev/null 2>&1; then
		die "vsock-proxy not found; it ships with aws-nitro-enclaves-cli."
	fi
	if [[ ! -r "${proxy_config}" ]]; then
		die "vsock-proxy allowlist ${proxy_config} not found. It should contain:
allowlist:
- {address: ${kms_host}, port: 443}"
	fi
	# vsock-proxy refuses endpoints missing from its allowlist; say so early.
	if ! grep -Fq "${kms_host}" "${proxy_config}"; then
		die "${kms_host}:443 is not in the vsock-proxy allowlist ${proxy_config}. Add:
- {address: ${kms_host}, port: 443}"
	fi
	proxy_log="${TMPDIR:-/tmp}/nitrosign-vsock-proxy-${proxy_port}.log"
	printf 'run-enclave: starting vsock-proxy %s %s 443 (log: %s)\n' "${proxy_port}" "${kms_host}" "${proxy_log}" >&2
	nohup vsock-proxy "${proxy_port}" "${kms_host}" 443 --config "${proxy_config}" >"${proxy_log}" 2>&1 &
	proxy_pid=$!
	sleep 1
	if ! kill -0 "${proxy_pid}" 2>/dev/null; then
		cat -- "${proxy_log}" >&2 || true
		die "vsock-proxy exited at once (is port ${proxy_port} already taken, for example by nitro-enclaves-vsock-proxy.service?)"
	fi
	printf 'run-enclave: vsock-proxy running as pid %s; the enclave reaches KMS at vsock CID 3 port %s. TLS ends inside the enclave; the proxy only carries TCP bytes.\n' "${proxy_pid}" "${proxy_port}" >&2
fi

# --- run -------------------------------------------------------------------------------

run_args=(
	run-enclave
	--enclave-name "${name}"
	--eif-path "${eif}"
	--cpu-count "${cpu_count}"
	--memory "${memory_mib}"
	--enclave-cid "${cid}"
)
if [[ "${debug_mode}" -eq 1 ]]; then
	run_args+=(--debug-mode)
fi

printf 'run-enclave: nitro-cli %s\n' "${run_args[*]}" >&2
if ! nitro-cli "${run_args[@]}"; then
	die "nitro-cli run-enclave failed; look up its error code (E..) in the Nitro Enclaves CLI error reference. Too little memory or CPU reserved by the allocator, or an enclave with the same name or CID already running, are the usual causes."
fi
enclave_started=1

cat >&2 <<EOF

run-enclave: enclave "${name}" started with CID ${cid}.
  Check it:       nitro-cli describe-enclaves
  Stop it:        nitro-cli terminate-enclave --enclave-name ${name}

Start the host on this instance against it:
  nitrosign-host -data-dir /var/lib/nitrosign -listen ${host_listen} -enclave-cid ${cid} -enclave-port ${enclave_port}
(in production: deploy/nitrosign-host.service, see docs/deployment.md).
EOF
if [[ -n "${proxy_pid}" ]]; then
	printf '  vsock-proxy:    pid %s (stop it with: kill %s)\n' "${proxy_pid}" "${proxy_pid}" >&2
fi
