#!/usr/bin/env bash
# Install the Autobahn|Testsuite fuzzing server (wstest) that compliance/run.py drives.
#
#   compliance/install.sh
#
# Everything goes to ${TRIO_WS_AUTOBAHN_HOME:-$HOME/.cache/trio-ws-compliance}; nothing is
# installed system-wide and /etc/apt is not touched. Running it again skips what is done.
#
# autobahntestsuite is Python 2.7 code (pip installs it on Python 3, but wstest cannot start
# there), and Debian 12 has no Python 2.7. So:
#   1. Python 2.7 comes from Debian 11 (bullseye) packages: apt-get fetches its indexes into a
#      private state directory, downloads the .debs, and dpkg-deb unpacks them under py27/.
#      TRIO_WS_PYTHON27=/path/to/python2.7 uses an existing interpreter instead.
#   2. bin/python2.7 is a wrapper that runs the virtualenv's Python with the private
#      libraries (libssl1.1, libffi7) on LD_LIBRARY_PATH; run.py starts wstest through it.
#   3. virtualenv < 20.22 (the last that makes Python 2.7 environments) creates venv27/.
#   4. venv27 gets the pinned packages of compliance/wstest-requirements.txt.
#
# Needs: apt-get and dpkg-deb (Debian or a derivative), debian-archive-keyring, python3 with
# venv, a C compiler (Twisted and wsaccel build extensions), and access to the Debian archive
# (TRIO_WS_DEBIAN_MIRROR, default http://deb.debian.org/debian; security updates from
# TRIO_WS_DEBIAN_SECURITY, default http://deb.debian.org/debian-security) and to PyPI.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
home=${TRIO_WS_AUTOBAHN_HOME:-$HOME/.cache/trio-ws-compliance}
requirements=$here/wstest-requirements.txt
mirror=${TRIO_WS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${TRIO_WS_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
packages=(python2.7 python2.7-minimal python2.7-dev libpython2.7 libpython2.7-minimal
          libpython2.7-stdlib libpython2.7-dev libssl1.1 libffi7)

say() { echo "install.sh: $*"; }
die() { echo "install.sh: error: $*" >&2; exit 1; }

mkdir -p "$home/bin"
say "installing into $home"

# 1. Python 2.7 -----------------------------------------------------------------------------
libdir=
if [[ -n ${TRIO_WS_PYTHON27:-} ]]; then
    python27=$TRIO_WS_PYTHON27
else
    root=$home/py27
    python27=$root/usr/bin/python2.7
    if [[ ! -x $python27 ]]; then
        command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null ||
            die "apt-get and dpkg-deb are needed (or set TRIO_WS_PYTHON27)"
        [[ -r $keyring ]] || die "$keyring is missing (package debian-archive-keyring)"
        apt=$home/apt
        rm -rf "$apt" "$root" "$root.partial"
        mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/prefs" "$apt/debs"
        cat >"$apt/sources.list" <<EOF
deb [signed-by=$keyring] $mirror bullseye main
deb [signed-by=$keyring] $security bullseye-security main
EOF
        apt_options=(
            -o "Dir::Etc::SourceList=$apt/sources.list" -o "Dir::Etc::SourceParts=$apt/prefs"
            -o "Dir::Etc::Preferences=$apt/prefs/none" -o "Dir::Etc::PreferencesParts=$apt/prefs"
            -o "Dir::State::Lists=$apt/lists" -o "Dir::State::status=/dev/null"
            -o "Dir::Cache=$apt/cache" -o "Debug::NoLocking=1" -o "APT::Sandbox::User=$(id -un)"
        )
        say "downloading Python 2.7 from Debian 11 ($mirror)"
        # apt-get update only warns when an index cannot be fetched: look for the warnings.
        apt-get "${apt_options[@]}" -qq update >"$apt/update.log" 2>&1 &&
            ! grep -q '^W: Failed to fetch' "$apt/update.log" ||
            die "apt-get update failed (network?):"$'\n'"$(grep -v '^W: Some' "$apt/update.log")"
        (cd "$apt/debs" && apt-get "${apt_options[@]}" -qq download "${packages[@]}") ||
            die "apt-get download failed (no network, or no bullseye on $mirror?)"
        for deb in "$apt/debs"/*.deb; do
            dpkg-deb -x "$deb" "$root.partial"
        done
        mv "$root.partial" "$root"  # only a complete tree counts as done
    fi
    libdir=$(echo "$root"/usr/lib/*-linux-gnu)
    [[ -d $libdir ]] || die "no library directory in $root/usr/lib"
fi

# 2. the wrapper ----------------------------------------------------------------------------
env_line=
if [[ -n $libdir ]]; then
    env_line="export LD_LIBRARY_PATH=\"$libdir\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}\""
    export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
cat >"$home/bin/python2.7" <<EOF
#!/bin/sh
# Written by trio_ws's compliance/install.sh: Python 2.7 of the wstest virtualenv.
$env_line
exec "$home/venv27/bin/python" "\$@"
EOF
chmod +x "$home/bin/python2.7"
"$python27" -c 'import ssl, zlib, ctypes' || die "$python27 cannot load ssl, zlib or ctypes"

# 3. the virtualenv -------------------------------------------------------------------------
if ! "$home/venv27/bin/python" -m pip --version >/dev/null 2>&1; then
    say "creating venv27"
    rm -rf "$home/venv27"
    if [[ ! -x $home/tools/bin/virtualenv ]]; then
        "${PYTHON3:-python3}" -m venv "$home/tools"
        "$home/tools/bin/python" -m pip install -q 'virtualenv<20.22' ||
            die "pip could not install virtualenv (network?)"
    fi
    "$home/tools/bin/virtualenv" -q -p "$python27" "$home/venv27"
fi

# 4. the packages ---------------------------------------------------------------------------
stamp=$home/venv27/installed-requirements.txt
if ! cmp -s "$requirements" "$stamp" || [[ ! -x $home/venv27/bin/wstest ]]; then
    say "installing autobahntestsuite and its dependencies"
    if [[ -n $libdir ]]; then  # headers for the C extensions live in the private root
        include=$root/usr/include
        export CFLAGS="-I$include -I$include/python2.7 ${CFLAGS:-}"
    fi
    # The test suite's own wheel declares no dependencies, so the pins come first.
    "$home/venv27/bin/pip" install -q --no-python-version-warning --no-deps -r "$requirements" ||
        die "pip install failed (network or compiler?)"
    cp "$requirements" "$stamp"
fi

version=$("$home/bin/python2.7" -c 'import autobahntestsuite; print(autobahntestsuite.__version__)')
say "ready: autobahntestsuite $version (run compliance/run.py)"
