#!/usr/bin/env bash
# CI hook (.ci/run runs scripts/services/ci-*.sh start): the loopback sshd servers
# for the ssh backend's tests (tests/integration/ssh), with the non-root login
# user those tests use to check "the server does not see the workdir". The test
# fixtures run the same command, so this only starts them early.
set -euo pipefail
export XQUTE_SSHD_USER=${XQUTE_SSHD_USER:-xqute-ssh-test}
exec bash "$(dirname "$0")/sshd.sh" "${1:-start}"
