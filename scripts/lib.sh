# shellcheck shell=bash
# lib.sh: messages and option checks shared by the scripts in this directory.
#
# Not a script of its own: a script sources it from its own directory, with
# its name, which starts every message:
#
#   # shellcheck source-path=SCRIPTDIR source=lib.sh disable=SC1091
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" build-eif
#
# With -x, ShellCheck follows that source line and checks this file as part
# of the script; SC1091 is its notice that without -x (as go test ./scripts
# runs it) it does not.

readonly LOG_PREFIX="${1:?usage: source lib.sh SCRIPT-NAME}"

# die prints its arguments as an error and exits with status 1.
die() {
	printf '%s: %s\n' "${LOG_PREFIX}" "$*" >&2
	exit 1
}

# warn prints its arguments as a warning and carries on.
warn() {
	printf '%s: warning: %s\n' "${LOG_PREFIX}" "$*" >&2
}

# need_value dies unless an option has a value after it.
# $1: option name, $2: number of remaining arguments including the option.
need_value() {
	if [[ "$2" -lt 2 ]]; then
		die "$1 needs a value (see --help)"
	fi
}

# need_uint dies unless a value is a whole number.
# $1: option name, $2: value.
need_uint() {
	if ! [[ "$2" =~ ^[0-9]+$ ]]; then
		die "$1 must be a whole number, got '$2'"
	fi
}
