#!/usr/bin/env bash
# Runs the PyKMIP conformance suite (scripts/conformance.sh) once in HSM
# mode: a fresh SoftHSM2 token in a temporary directory, `minikms hsm
# init`, then `minikms dev` with the MINIKMS_PKCS11_* variables, so the
# root key and the CA keys are in the token.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/minikms}
MODULE=${MINIKMS_PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
if [ ! -e "$MODULE" ] || ! command -v softhsm2-util >/dev/null; then
  echo "SoftHSM2 is not installed (scripts/deps.sh installs it)" >&2
  exit 1
fi
hsm=$(mktemp -d)
trap 'rm -rf "$hsm"' EXIT
mkdir "$hsm/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' "$hsm/tokens" >"$hsm/softhsm2.conf"
export SOFTHSM2_CONF="$hsm/softhsm2.conf"
pin=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
softhsm2-util --init-token --free --label minikms-conformance --pin "$pin" --so-pin "so-$pin" >/dev/null
printf '%s\n' "$pin" >"$hsm/pin"
unset MINIKMS_ROOT_KEY MINIKMS_PKCS11_PIN
export MINIKMS_PKCS11_MODULE="$MODULE" MINIKMS_PKCS11_TOKEN_LABEL=minikms-conformance MINIKMS_PKCS11_PIN_FILE="$hsm/pin"
"$BIN" hsm init
scripts/conformance.sh "$@"
"$BIN" hsm status | grep -E 'root key:|minikms-pki-(root|tenant/acme) .*private-key'
