#!/usr/bin/env bash
# Make sure a Docker engine answers on /var/run/docker.sock (chapter 2 and its tests need one).
# With systemd: `systemctl start docker`. Without (containers, CI): start dockerd in the background.
set -euo pipefail
docker_cli=/usr/bin/docker; [ -x "$docker_cli" ] || docker_cli=docker
if "$docker_cli" info >/dev/null 2>&1; then
  exit 0
fi
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
if [ -d /run/systemd/system ]; then
  $sudo systemctl start docker
else
  echo "start-dockerd: no systemd here; starting dockerd in the background (log: /tmp/labkit-dockerd.log)"
  $sudo sh -c 'nohup dockerd --host unix:///var/run/docker.sock >/tmp/labkit-dockerd.log 2>&1 &'
fi
for _ in $(seq 1 60); do
  if $sudo "$docker_cli" info >/dev/null 2>&1; then
    exit 0
  fi
  sleep 0.5
done
echo "start-dockerd: the Docker engine did not come up; see /tmp/labkit-dockerd.log" >&2
exit 1
