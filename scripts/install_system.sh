#!/bin/sh
# Install the Debian packages lossvista uses outside its venv, when they are missing and we can:
# ParaView 5.11 (pvbatch, pvpython), Xvfb (ParaView renders through GLX only), Fashion-MNIST and
# Chromium (the browser tests open the run's HTML page in it, headless).
# Never fails the build: without root or apt, the ParaView and browser tests skip and say why
# (unless LOSSVISTA_REQUIRE_PARAVIEW=1 and LOSSVISTA_REQUIRE_BROWSER=1, as in CI).
need=""
command -v pvbatch >/dev/null 2>&1 || need="$need paraview python3-paraview"
command -v xvfb-run >/dev/null 2>&1 || need="$need xvfb"
[ -d /usr/share/datasets/fashion-mnist ] || need="$need dataset-fashion-mnist"
command -v chromium >/dev/null 2>&1 || need="$need chromium"
[ -z "$need" ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "note: not root on Debian; skipping install of:$need" >&2
    exit 0
fi
echo "installing Debian packages:$need"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q $need >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q $need >/dev/null; } \
    || echo "note: apt-get install$need failed; the ParaView and browser tests will say so" >&2
exit 0
