# Sourced by scripts/test and scripts/bench, inside a private mount
# namespace (unshare --mount): starts a systemd-journald of their own at the
# usual path. It runs without systemd as PID 1 once /run/systemd/journal
# exists. Only that directory is covered (the rest of /run/systemd, e.g.
# resolved's resolv.conf, stays visible); its files go to a tmpfs at
# /run/log/journal, and a journald.conf of ours keeps them volatile and never
# rate-limits (tests and benchmarks send bursts).
#   start_private_journald WORKDIR   sets journald_pid
start_private_journald() {
  local work="$1"
  mkdir -p /run/systemd/journal /run/log/journal
  mount -t tmpfs -o mode=0755 tmpfs /run/systemd/journal
  mount -t tmpfs -o mode=0755 tmpfs /run/log/journal
  printf '[Journal]\nStorage=volatile\nRateLimitIntervalSec=0\nForwardToSyslog=no\nForwardToWall=no\n' >"$work/journald.conf"
  # (Debian ships the file; a bind mount needs one to cover.)
  [ -e /etc/systemd/journald.conf ] || { mkdir -p /etc/systemd && touch /etc/systemd/journald.conf; }
  mount --bind "$work/journald.conf" /etc/systemd/journald.conf
  /lib/systemd/systemd-journald >"$work/journald.log" 2>&1 &
  journald_pid=$!
  for _ in $(seq 1 100); do
    [ -S /run/systemd/journal/socket ] && return 0
    sleep 0.1
  done
  echo "the private journald did not start:" >&2
  cat "$work/journald.log" >&2
  return 1
}
