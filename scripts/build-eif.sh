#!/usr/bin/env bash
# build-eif.sh: build the nitrosign enclave image file (EIF) reproducibly and
# record its measurements (PCR0, PCR1, PCR2).
#
# PCR0 is the enclave's identity. The KMS key policy pins it (print that policy
# with `nitrosign kms-policy --pcr0 <PCR0>` once that command lands), and
# clients check it in attestation documents. Two builds of the same commit with
# the same genesis.json, the same nitro-cli version and the same CPU
# architecture must give the same PCR0; run this script a second time on an
# independent machine with --no-cache --expect-pcr0 to prove it.
#
# Run `scripts/build-eif.sh --help` for the options.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh disable=SC1091
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" build-eif

readonly IMAGE_TAG_DEFAULT="nitrosign-enclave:eif-build"
readonly GO_IMAGE_ARG="GO_IMAGE"

script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd -- "${script_dir}/.." && pwd)
dockerfile="${repo_root}/Dockerfile.enclave"

genesis=""
output="nitrosign.eif"
tag="${IMAGE_TAG_DEFAULT}"
go_image=""
no_cache=0
expect_pcr0=""

usage() {
	cat <<EOF
Usage: scripts/build-eif.sh [options]

Build the nitrosign enclave image from Dockerfile.enclave, convert it to an EIF
with nitro-cli, print its PCR0/PCR1/PCR2 and write them to OUTPUT.pcrs.json.

Options:
  --genesis FILE       genesis config to measure into the image
                       (default: genesis.json at the repository root).
                       The operator supplies it; it is part of PCR0.
  --output FILE        EIF to write (default: nitrosign.eif); the PCRs go to
                       FILE.pcrs.json
  --tag TAG            Docker image tag to build (default: ${IMAGE_TAG_DEFAULT})
  --go-image REF       override the Go build image; must be pinned by digest
                       (name:tag@sha256:<64 hex>)
  --no-cache           build without the Docker layer cache (use this for the
                       independent second build)
  --expect-pcr0 HEX    fail unless the new EIF's PCR0 equals HEX (compare an
                       independent rebuild against a published PCR0)
  -h, --help           show this help

Requirements: docker (with BuildKit) and nitro-cli, on Linux, on the same CPU
architecture as the parent instances that will run the EIF.

PCR0 is what the KMS key policy pins: after a build, give it to a key admin
(\`nitrosign kms-policy --pcr0 <PCR0>\`, coming in a later issue). A new PCR0
cannot unseal until the policy allows it.
EOF
}

while [[ $# -gt 0 ]]; do
	case "$1" in
	--genesis)
		need_value "$1" "$#"
		genesis="$2"
		shift 2
		;;
	--output)
		need_value "$1" "$#"
		output="$2"
		shift 2
		;;
	--tag)
		need_value "$1" "$#"
		tag="$2"
		shift 2
		;;
	--go-image)
		need_value "$1" "$#"
		go_image="$2"
		shift 2
		;;
	--no-cache)
		no_cache=1
		shift
		;;
	--expect-pcr0)
		need_value "$1" "$#"
		expect_pcr0="$2"
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

# --- base image pin (fail closed) ----------------------------------------------

# The default comes from Dockerfile.enclave's "ARG GO_IMAGE=..." line.
if [[ ! -f "${dockerfile}" ]]; then
	die "missing ${dockerfile}"
fi
default_go_image=$(sed -n "s/^ARG ${GO_IMAGE_ARG}=//p" "${dockerfile}" | head -n 1)
effective_go_image="${go_image:-${default_go_image}}"
if [[ -z "${effective_go_image}" ]]; then
	die "could not find 'ARG ${GO_IMAGE_ARG}=...' in Dockerfile.enclave"
fi
if ! [[ "${effective_go_image}" =~ ^[a-z0-9][a-z0-9._/:-]*@sha256:[0-9a-f]{64}$ ]]; then
	cat >&2 <<EOF
build-eif: refusing to build: the Go build image is not pinned to a real digest:
  ${effective_go_image}
An unpinned or placeholder base image makes PCR0 depend on whatever the tag
points at today. Resolve the digest and put it in Dockerfile.enclave
(ARG ${GO_IMAGE_ARG}=golang:<version>-bookworm@sha256:<digest>):

  docker buildx imagetools inspect golang:1.26-bookworm

and copy the top-level "Digest:" (the multi-platform index).
EOF
	exit 1
fi

# --- tools -------------------------------------------------------------------

if ! command -v docker >/dev/null 2>&1; then
	die "docker not found. On Amazon Linux 2023: sudo dnf install -y docker && sudo systemctl enable --now docker && sudo usermod -aG docker \"\$USER\" (then log in again)."
fi
if ! command -v nitro-cli >/dev/null 2>&1; then
	die "nitro-cli not found. On Amazon Linux 2023: sudo dnf install -y aws-nitro-enclaves-cli aws-nitro-enclaves-cli-devel (see docs/deployment.md). An EIF can be built on any Linux host with nitro-cli, not only on a parent instance."
fi
if ! docker info >/dev/null 2>&1; then
	die "docker is installed but the daemon is not reachable (is it running, and is $(id -un) in the docker group?)"
fi

# --- genesis config --------------------------------------------------------------

# The Docker build context is the repository; a genesis file elsewhere is
# staged into a temporary directory inside it for the duration of the build.
staged_dir=""
cleanup() {
	if [[ -n "${staged_dir}" && -d "${staged_dir}" ]]; then
		rm -rf -- "${staged_dir}"
	fi
}
trap cleanup EXIT

if [[ -z "${genesis}" ]]; then
	genesis="${repo_root}/genesis.json"
fi
if [[ ! -f "${genesis}" ]]; then
	die "genesis config not found: ${genesis}
The operator supplies it (registered client keys, admin set, initial policy);
pass it with --genesis FILE. It is measured into PCR0."
fi
genesis_abs=$(cd -- "$(dirname -- "${genesis}")" && pwd)/$(basename -- "${genesis}")
case "${genesis_abs}" in
"${repo_root}"/*)
	genesis_arg="${genesis_abs#"${repo_root}"/}"
	;;
*)
	staged_dir=$(mktemp -d "${repo_root}/.genesis-build.XXXXXX")
	cp -- "${genesis_abs}" "${staged_dir}/genesis.json"
	genesis_arg="${staged_dir#"${repo_root}"/}/genesis.json"
	;;
esac

# --- docker build ------------------------------------------------------------------

build_args=(
	--file "${dockerfile}"
	--tag "${tag}"
	# Fixed on purpose: Docker Buildx copies SOURCE_DATE_EPOCH from the
	# environment when it is set, and any other value would change PCR0.
	--build-arg SOURCE_DATE_EPOCH=0
	--build-arg "GENESIS=${genesis_arg}"
)
if [[ -n "${go_image}" ]]; then
	build_args+=(--build-arg "${GO_IMAGE_ARG}=${go_image}")
fi
if [[ "${no_cache}" -eq 1 ]]; then
	build_args+=(--no-cache)
fi

printf 'build-eif: genesis %s (sha256 %s)\n' "${genesis_abs}" "$(sha256sum -- "${genesis_abs}" | cut -d' ' -f1)" >&2
printf 'build-eif: go image %s\n' "${effective_go_image}" >&2
printf 'build-eif: docker build -> %s\n' "${tag}" >&2
# Build progress goes to stderr so that stdout carries only the PCR JSON.
DOCKER_BUILDKIT=1 docker build "${build_args[@]}" "${repo_root}" >&2

# --- nitro-cli build-enclave ---------------------------------------------------------

output_dir=$(dirname -- "${output}")
mkdir -p -- "${output_dir}"
pcrs_file="${output}.pcrs.json"

printf 'build-eif: nitro-cli build-enclave -> %s\n' "${output}" >&2
build_json=$(nitro-cli build-enclave --docker-uri "${tag}" --output-file "${output}")

# nitro-cli prints {"Measurements": {"HashAlgorithm": ..., "PCR0": ...}}.
pcr_value() {
	printf '%s\n' "${build_json}" |
		grep -o "\"$1\"[[:space:]]*:[[:space:]]*\"[0-9a-fA-F]*\"" |
		head -n 1 |
		sed 's/.*"\([0-9a-fA-F]*\)"$/\1/' |
		tr 'A-F' 'a-f'
}
pcr0=$(pcr_value PCR0)
pcr1=$(pcr_value PCR1)
pcr2=$(pcr_value PCR2)
for pair in "PCR0:${pcr0}" "PCR1:${pcr1}" "PCR2:${pcr2}"; do
	name="${pair%%:*}"
	value="${pair#*:}"
	if ! [[ "${value}" =~ ^[0-9a-f]{96}$ ]]; then
		printf '%s\n' "${build_json}" >&2
		die "could not read ${name} (96 hex digits) from nitro-cli's output above"
	fi
done

pcrs_json=$(printf '{\n  "HashAlgorithm": "SHA384",\n  "PCR0": "%s",\n  "PCR1": "%s",\n  "PCR2": "%s"\n}' "${pcr0}" "${pcr1}" "${pcr2}")
tmp_pcrs=$(mktemp "${pcrs_file}.XXXXXX")
printf '%s\n' "${pcrs_json}" >"${tmp_pcrs}"
mv -f -- "${tmp_pcrs}" "${pcrs_file}"

printf '%s\n' "${pcrs_json}"
cat >&2 <<EOF

build-eif: wrote ${output} and ${pcrs_file}
  built with: $(nitro-cli --version 2>/dev/null | head -n 1 || echo "nitro-cli, version unknown") on $(uname -m)

PCR0 identifies this exact image (binary + genesis config + nitro-cli kernel).
  * Compare PCRs, not the EIF's sha256: the EIF's metadata section records the
    build time, which PCR0 does not cover.
  * Have a second person rebuild the same commit with the same genesis.json on
    another machine:
      scripts/build-eif.sh --no-cache --genesis genesis.json --expect-pcr0 ${pcr0}
  * The KMS key policy pins PCR0; a key admin must allow this value before this
    image can unseal:
      nitrosign kms-policy --pcr0 ${pcr0}    (coming in a later issue)
EOF

if [[ -n "${expect_pcr0}" ]]; then
	want=$(printf '%s' "${expect_pcr0}" | tr 'A-F' 'a-f')
	if [[ "${want}" != "${pcr0}" ]]; then
		die "PCR0 mismatch: expected ${want}, built ${pcr0}"
	fi
	printf 'build-eif: PCR0 matches the expected value\n' >&2
fi
