#!/usr/bin/env bash
# watch-enclave.sh: stay in the foreground while the named Nitro enclave is
# running, and exit 1 once it is not.
#
# It is the main process of the supervised enclave unit in
# docs/deployment.md. `nitro-cli run-enclave` returns as soon as the enclave
# is up, so systemd has no process whose life is the enclave's; this script
# is that process: when the enclave stops (its program exited or crashed, or
# someone terminated it) the script exits, and systemd (Restart=always)
# terminates what is left and runs the enclave again, while nitrosign-host
# keeps running and unseals the new enclave.
#
# Run `scripts/watch-enclave.sh --help` for the options.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" watch-enclave

name="nitrosign"
interval=2
tolerate=3

usage() {
	cat <<EOF2
Usage: scripts/watch-enclave.sh [options]

Wait while the Nitro enclave NAME is RUNNING (nitro-cli describe-enclaves,
every INTERVAL seconds); exit 1 once it is not. Meant as the main process
of a systemd unit with Restart=always (see docs/deployment.md).

Options:
  --name NAME       enclave name given to nitro-cli run-enclave (default: ${name})
  --interval N      seconds between checks (default: ${interval})
  --tolerate N      consecutive failures of nitro-cli describe-enclaves
                    tolerated before giving up (default: ${tolerate}); a failure
                    to ask is not taken for a stopped enclave at once, since
                    the unit's restart terminates a running one
  -h, --help        show this help
EOF2
}

while [[ $# -gt 0 ]]; do
	case "$1" in
	--name)
		need_value "$1" "$#"
		name="$2"
		shift 2
		;;
	--interval)
		need_value "$1" "$#"
		interval="$2"
		shift 2
		;;
	--tolerate)
		need_value "$1" "$#"
		tolerate="$2"
		shift 2
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

need_uint --interval "${interval}"
need_uint --tolerate "${tolerate}"
if [[ "${interval}" -lt 1 ]]; then
	die "--interval must be at least 1 second"
fi
if [[ -z "${name}" ]]; then
	die "--name must not be empty"
fi
for tool in nitro-cli jq; do
	if ! command -v "${tool}" >/dev/null 2>&1; then
		die "${tool} not found (on Amazon Linux 2023: sudo dnf install -y aws-nitro-enclaves-cli jq)"
	fi
done

# state prints RUNNING when the enclave runs, STOPPED when
# describe-enclaves does not list it as running, and returns 1 when
# describe-enclaves could not be asked or did not answer with JSON.
state() {
	local out
	if ! out=$(nitro-cli describe-enclaves 2>&1); then
		warn "nitro-cli describe-enclaves failed: ${out}"
		return 1
	fi
	if ! jq -e 'type == "array"' >/dev/null 2>&1 <<<"${out}"; then
		warn "nitro-cli describe-enclaves did not answer with a JSON array: ${out}"
		return 1
	fi
	if jq -e --arg n "${name}" 'any(.[]; .EnclaveName == $n and .State == "RUNNING")' >/dev/null <<<"${out}"; then
		echo RUNNING
	else
		echo STOPPED
	fi
}

failures=0
seen=0
while true; do
	if s=$(state); then
		failures=0
		if [[ "${s}" != RUNNING ]]; then
			if [[ "${seen}" -eq 0 ]]; then
				die "enclave ${name} is not running (was nitro-cli run-enclave --enclave-name ${name} run first?)"
			fi
			die "enclave ${name} is no longer running; exiting so that it is started again"
		fi
		if [[ "${seen}" -eq 0 ]]; then
			printf 'watch-enclave: enclave %s is running; checking every %ss\n' "${name}" "${interval}" >&2
			seen=1
		fi
	else
		failures=$((failures + 1))
		if [[ "${failures}" -gt "${tolerate}" ]]; then
			die "could not ask nitro-cli about enclave ${name} ${failures} times in a row; giving up"
		fi
	fi
	sleep "${interval}"
done
