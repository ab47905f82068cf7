#!/usr/bin/env bash
# Installs the Debian packages execsentry's build and tests need, only those missing, so that a machine with
# nothing but Node.js and Debian can run the test suite. Safe to run again; a no-op when all are present.
set -euo pipefail

# command → Debian package that provides it
declare -A needed=(
  [g++]=g++
  [cc]=gcc
  [make]=make
  [python3]=python3
  [script]=bsdutils
  [runuser]=util-linux
  [setpriv]=util-linux
  [taskset]=util-linux
  [rsyslogd]=rsyslog
  [systemd-analyze]=systemd
  [openssl]=openssl
  [ps]=procps
  # the socket-linger test delays one syscall of a snapshot (strace --inject)
  [strace]=strace
  # the man page test renders the generated page (man-db brings groff)
  [man]=man-db
  # the session tests log in over ssh on 127.0.0.1
  [sshd]=openssh-server
  [ssh]=openssh-client
)

missing=()
for cmd in "${!needed[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${needed[$cmd]}")
done
# A game/system user the tests spawn shells as must exist (Debian's base-passwd has them).
getent passwd daemon >/dev/null || missing+=(base-passwd)

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
if [ "$(id -u)" -ne 0 ]; then
  echo "system-deps: missing packages ${missing[*]}; run as root to install them (apt-get install -y ${missing[*]})" >&2
  exit 1
fi
echo "system-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
