#!/usr/bin/env bash
# Builds the container image of the controller, or of the simulator (a test tool), from the
# repository's Dockerfile, with no daemon, and writes it as an OCI archive (docs/image.md):
#   scripts/build-image.sh controller|simulator [--tag REF] [--out FILE] [--source URL]
#                          [--builder buildah|docker] [--binary PATH]
# 1. builds the release binary (`cargo auditable build --release --locked`: the binary carries its
#    crate list for image scanners);
# 2. stages the Dockerfile's build context: the binary; the C libraries it links and their loader,
#    found with ldd and taken from the Debian packages that hold them on this machine (apt-get
#    download + dpkg-deb -x, cached in ~/.cache/modelstudio-image/debs); Debian's CA bundle;
#    /etc/passwd and /etc/group with nonroot (65532); the packages' copyright files. It runs the
#    staged binary in a chroot as 65532 to prove the libraries suffice;
# 3. builds the Dockerfile's target with buildah (FROM scratch: nothing is pulled; vfs storage
#    and chroot isolation in a scratch folder, removed afterwards) and writes the OCI archive,
#    named REF in its index (containerd and `crane push` take the name from there);
# 4. prints the image's size; the last line of stdout is the archive's path.
# --tag     the image's full reference; default localhost:5000/<binary>:<crate version>, the
#           chart's and deploy/'s default image
# --out     the archive; default <cargo target dir>/image/<binary>-<version>.oci.tar
# --source  the org.opencontainers.image.source label; default $IMAGE_SOURCE, else git's remote
#           "origin" as an https URL, else Cargo.toml's `repository`, else none (a warning)
# --builder docker: `docker build` of the same Dockerfile and context, then `docker save`
# --binary  an already-built binary of this checkout instead of step 1 (a quick check of the
#           image's layout; an image to ship is built by step 1)
# Installs buildah (apt) and cargo-auditable (crates.io) when missing, as root.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "build-image: $*" >&2; exit 1; }
say() { echo "build-image: $*" >&2; }
usage() { sed -n '4,5p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

[ $# -ge 1 ] || usage
which="$1"; shift
case "$which" in
  controller) package=modelstudio-controller; bin=modelstudio-controller ;;
  simulator) package=modelstudio-simulator; bin=modelstudio-simulator ;;
  *) usage ;;
esac
tag="" out="" source_url="${IMAGE_SOURCE:-}" builder=buildah prebuilt=""
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) tag="${2:?--tag needs a reference}"; shift 2 ;;
    --out) out="${2:?--out needs a file}"; shift 2 ;;
    --source) source_url="${2:?--source needs a URL}"; shift 2 ;;
    --builder) builder="${2:?--builder needs buildah or docker}"; shift 2 ;;
    --binary) prebuilt="${2:?--binary needs a path}"; shift 2 ;;
    *) usage ;;
  esac
done
case "$builder" in buildah | docker) ;; *) usage ;; esac
start=$(date +%s)

# The package's version, license, repository and description, and cargo's target folder.
IFS=$'\t' read -r version licenses target repository description < <(
  cargo metadata --no-deps --locked --format-version 1 | python3 -c '
import json, sys
meta = json.load(sys.stdin)
pkg = next(p for p in meta["packages"] if p["name"] == sys.argv[1])
if not any(t["name"] == sys.argv[2] and "bin" in t["kind"] for t in pkg["targets"]):
    sys.exit(f"build-image: package {sys.argv[1]} has no binary {sys.argv[2]}")
print(pkg["version"], pkg["license"], meta["target_directory"], pkg["repository"] or "-",
      pkg["description"], sep="\t")
' "$package" "$bin"
) || die "could not read $package from cargo metadata"
[ -n "$version" ] || die "could not read $package from cargo metadata"
tag="${tag:-localhost:5000/$bin:$version}"
mkdir -p "$target/image"
out="${out:-$target/image/$bin-$version.oci.tar}"
case "$tag" in *:*) ;; *) die "--tag $tag has no :<tag>; give the full reference, e.g. <registry>/$bin:$version" ;; esac
# buildah's oci-archive:PATH:REF splits at the first colon.
case "$out" in *:*) die "--out $out: the path must not contain ':'" ;; esac
mkdir -p "$(dirname "$out")"
out="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"

# Labels from git: the commit, its time (the image's creation time, so that the same commit gives
# the same layers), the repository's URL.
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  say "warning: the work tree has uncommitted changes; the revision label names HEAD ($revision)"
fi
epoch="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)
if [ -z "$source_url" ]; then
  source_url=$(git remote get-url origin 2>/dev/null || true)
  # git@host:owner/repo.git -> https://host/owner/repo
  source_url=$(sed -E -e 's#^git@([^:]+):#https://\1/#' -e 's#^ssh://git@#https://#' -e 's#\.git$##' <<<"$source_url")
  # A clone of a local folder has a path as origin: not a source anyone else can reach.
  case "$source_url" in https://*) ;; *) source_url="" ;; esac
fi
# Else Cargo.toml's `repository`.
[ -n "$source_url" ] || [ "$repository" = - ] || source_url="$repository"
[ -n "$source_url" ] || say "warning: no source URL (no --source, no https remote origin, no repository in Cargo.toml): the image has no org.opencontainers.image.source label"

as_root() { [ "$(id -u)" = 0 ] || die "$1: missing, and getting it needs root"; }
# apt-get update once per run, or when this machine has no apt lists yet.
apt_update() {
  [ -e "$work/apt-updated" ] && return 0
  as_root "apt's package lists"
  say "apt-get update"
  apt-get update -qq >&2
  : >"$work/apt-updated"
}
apt_lists() {
  compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null || apt_update
}

# 1. The release binary.
if [ -n "$prebuilt" ]; then
  [ -x "$prebuilt" ] || die "--binary $prebuilt is not an executable"
  binary="$prebuilt"
  say "using the binary $binary (not built here)"
else
  # cargo-auditable embeds the crate list (a compressed JSON section, a few kB) that trivy,
  # grype and syft read; it changes nothing else in the binary.
  if ! cargo auditable --version >/dev/null 2>&1; then
    as_root cargo-auditable
    say "installing cargo-auditable 0.7.7 (crates.io)"
    cargo install --quiet --locked cargo-auditable --version 0.7.7 >&2
  fi
  say "building $bin $version (release)"
  cargo auditable build --release --locked -p "$package" --bin "$bin" >&2
  binary="$target/release/$bin"
fi
interpreter=$(readelf -l "$binary" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
[ -n "$interpreter" ] || die "$binary has no ELF interpreter: a static binary needs no libraries; this script stages a dynamic one"

work=$(mktemp -d "$target/image/work.XXXXXX")
# vfs storage keeps read-only copies of the layers: made writable first, so rm removes them.
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
base="$work/context/base"
mkdir -p "$base" "$work/context/app" "$work/debs"
install -m 0755 "$binary" "$work/context/app/$bin"

# 2. The libraries and their loader (ldd's paths, the interpreter first), each from the Debian
# package that holds it here, at the same version: the binary was linked against these.
debs="${XDG_CACHE_HOME:-$HOME/.cache}/modelstudio-image/debs"
mkdir -p "$debs"
# The package holding a path (dpkg knows /lib/... on a merged-/usr system: try both spellings).
owner() {
  local candidate found
  for candidate in "$1" "${1#/usr}" "/usr$1" "$(readlink -f "$1")" "$(readlink -f "$1" | sed 's#^/usr##')"; do
    found=$(dpkg -S "$candidate" 2>/dev/null | grep -v '^diversion' | head -n 1) || continue
    # "libc6:amd64: /lib/x86_64-linux-gnu/libc.so.6" (or "a:amd64, a:i386: /path")
    found="${found%%: *}"
    [ -n "$found" ] && { echo "${found%%,*}"; return 0; }
  done
  return 1
}
# apt-get download into the cache: into a folder of its own first, then renamed, so that builds
# running at once never read a half-written .deb (as root: apt's _apt user cannot write to
# root's home).
apt_download() {
  local sandbox=() dl
  [ "$(id -u)" = 0 ] && sandbox=(-o APT::Sandbox::User=root)
  dl=$(mktemp -d "$debs/download.XXXXXX")
  if (cd "$dl" && apt-get download -q "${sandbox[@]}" "$1" >&2); then
    mv -f "$dl"/*.deb "$debs/" && rmdir "$dl"
  else
    rm -rf "$dl"
    return 1
  fi
}
# Downloads PACKAGE=VERSION (arch ARCH) into the cache once; sets deb_file. Fails when apt has
# no such version.
fetch_deb() {
  local name=$1 version=$2 arch=$3 file spec
  file="$debs/${name}_${version//:/%3a}_${arch}.deb"
  spec="$name:$arch=$version"
  [ "$arch" = all ] && spec="$name=$version"
  if [ ! -s "$file" ]; then
    apt_lists
    apt_download "$spec" || { apt_update && apt_download "$spec"; } || return 1
  fi
  [ -s "$file" ] || die "apt-get download gave no $file"
  deb_file="$file"
}
# Extracts the .deb of an installed package (NAME or NAME:ARCH; the same version) into
# $work/debs/NAME; prints that folder.
extract_installed() {
  local name version arch dir
  read -r name version arch < <(dpkg-query -W -f '${Package} ${Version} ${Architecture}\n' "$1" | head -n 1)
  [ -n "$version" ] || die "$1 is not installed"
  dir="$work/debs/$name"
  [ -d "$dir" ] && { echo "$dir"; return 0; }
  if fetch_deb "$name" "$version" "$arch"; then
    dpkg-deb -x "$deb_file" "$dir"
    say "  $name $version"
  else
    # Debian's mirrors keep only a suite's newest version: an older one installed here is taken
    # from this machine's files of it, when dpkg finds them unchanged.
    [ -z "$(dpkg --verify "$1" 2>&1 | grep -v ' c /')" ] \
      || die "$name $version cannot be downloaded, and dpkg --verify finds this machine's copy changed"
    mkdir -p "$dir"
    # Its files and links, not its folders (on a merged-/usr system /lib is a link here).
    dpkg -L "$1" | LC_ALL=C sort -u \
      | awk 'NR > 1 && index($0, prev "/") != 1 {print prev} {prev = $0} END {print prev}' \
      | while IFS= read -r f; do
          if [ -L "$f" ] || [ -f "$f" ]; then echo "${f#/}"; fi
        done | tar -C / --no-recursion -cf - -T - | tar -C "$dir" -xf -
    say "  $name $version (this machine's installed files: apt has this version no longer)"
  fi
  echo "$dir"
}
# The file PATH names inside the folder ROOT, its links followed there (an absolute link is
# ROOT's, as libc6's /lib64/ld-linux-x86-64.so.2 is), not on this machine.
resolve_in() {
  local root=$1 path=$2 target hops=0
  while [ -L "$root$path" ]; do
    target=$(readlink "$root$path")
    case "$target" in /*) path="$target" ;; *) path="$(dirname "$path")/$target" ;; esac
    hops=$((hops + 1))
    [ "$hops" -lt 20 ] || return 1
  done
  [ -f "$root$path" ] && echo "$root$path"
}
# Copies the package's copyright file (following a doc folder that links to another package's,
# as libgcc-s1's does to gcc-12-base's).
copyright() {
  local spec=$1 name=${1%%:*} arch="" dir doc
  [ "$spec" = "$name" ] || arch=":${spec#*:}"
  dir=$(extract_installed "$spec")
  doc="$dir/usr/share/doc/$name"
  if [ -L "$doc" ]; then
    local other
    other=$(readlink "$doc")
    dpkg-query -W "$other$arch" >/dev/null 2>&1 && other="$other$arch"
    copyright "$other"
    return
  fi
  [ -f "$doc/copyright" ] || die "$name has no usr/share/doc/$name/copyright"
  install -D -m 0644 "$doc/copyright" "$base/usr/share/doc/$name/copyright"
}

say "staging the libraries of $bin (Debian packages)"
libs=$( { echo "$interpreter"; ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'; } | awk '!seen[$0]++')
packages=""
for lib in $libs; do
  package_of=$(owner "$lib") || die "no Debian package holds $lib"
  dir=$(extract_installed "$package_of")
  found=""
  for candidate in "$lib" "${lib#/usr}" "/usr$lib"; do
    found=$(resolve_in "$dir" "$candidate") && break
  done
  [ -n "$found" ] || die "$package_of's .deb has no $lib"
  # A real file at the path the loader looks for (the interpreter's exactly as the ELF names it).
  install -D -m 0755 "$found" "$base$lib"
  case " $packages " in *" $package_of "*) ;; *) packages="$packages $package_of" ;; esac
done
for package_of in $packages; do copyright "$package_of"; done

# The CA bundle as update-ca-certificates makes it: Mozilla's certificates of the newest
# ca-certificates in the apt lists, concatenated.
apt_lists
ca_version=$(apt-cache policy ca-certificates | awk '/Candidate:/ {print $2}')
case "$ca_version" in "" | "(none)") die "apt knows no ca-certificates" ;; esac
fetch_deb ca-certificates "$ca_version" all \
  || die "could not download ca-certificates $ca_version (apt-get download)"
dpkg-deb -x "$deb_file" "$work/debs/ca-certificates"
say "  ca-certificates $ca_version"
mkdir -p "$base/etc/ssl/certs"
bundle="$base/etc/ssl/certs/ca-certificates.crt"
: >"$bundle"
while IFS= read -r crt; do
  sed -e '$a\' "$crt" >>"$bundle"
done < <(find "$work/debs/ca-certificates/usr/share/ca-certificates/mozilla" -name '*.crt' | LC_ALL=C sort)
chmod 0644 "$bundle"
certs=$(grep -c 'BEGIN CERTIFICATE' "$bundle" || true)
[ "$certs" -ge 100 ] || die "the CA bundle holds $certs certificates; expected Mozilla's (over 100)"
install -D -m 0644 "$work/debs/ca-certificates/usr/share/doc/ca-certificates/copyright" \
  "$base/usr/share/doc/ca-certificates/copyright"

# Users as distroless has them; nonroot (65532) is the image's user.
printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' \
  'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
  'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$base/etc/passwd"
printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'nonroot:x:65532:' >"$base/etc/group"
# glibc without this file asks DNS before /etc/hosts.
printf '%s\n' 'passwd: files' 'group: files' 'hosts: files dns' >"$base/etc/nsswitch.conf"
chmod 0644 "$base/etc/passwd" "$base/etc/group" "$base/etc/nsswitch.conf"
install -d -m 1777 "$base/tmp"

# The staged root runs the binary as 65532 with only these libraries (root can chroot).
if [ "$(id -u)" = 0 ] && command -v chroot >/dev/null; then
  mkdir -p "$work/check"
  cp -al "$base/." "$work/context/app/." "$work/check/"
  chroot --userspec=65532:65532 "$work/check" "/$bin" --help >/dev/null \
    || die "/$bin --help failed in the staged root: a library is missing"
  rm -rf "$work/check"
  say "checked: /$bin runs in the staged root as 65532"
fi

# 3. The image.
context="$work/context"
build_args=(--build-arg "VERSION=$version" --build-arg "REVISION=$revision"
  --build-arg "CREATED=$created" --build-arg "LICENSES=$licenses"
  --build-arg "DESCRIPTION=$description" --target "$which")
[ -z "$source_url" ] || build_args+=(--label "org.opencontainers.image.source=$source_url")
tmp_out="$work/image.tar"
if [ "$builder" = buildah ]; then
  if ! command -v buildah >/dev/null; then
    as_root buildah
    apt_update
    say "installing buildah (apt)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends buildah >&2
  fi
  # Storage of its own (not /var/lib/containers), removed with $work.
  storage=(--root "$work/buildah/root" --runroot "$work/buildah/run" --storage-driver vfs)
  say "building $tag (buildah $(buildah --version | awk '{print $3}'))"
  buildah "${storage[@]}" bud --isolation chroot --timestamp "$epoch" --format oci \
    --layers=false "${build_args[@]}" -f "$PWD/Dockerfile" -t "$tag" "$context" >&2
  buildah "${storage[@]}" push --quiet "$tag" "oci-archive:$tmp_out:$tag" >&2
else
  command -v docker >/dev/null || die "docker is missing"
  say "building $tag (docker)"
  docker build --build-arg "SOURCE_DATE_EPOCH=$epoch" "${build_args[@]}" -f "$PWD/Dockerfile" -t "$tag" "$context" >&2
  # Docker 25 and later save an OCI layout (named by the tag only); older ones their own format.
  docker save -o "$tmp_out" "$tag"
fi
mv -f "$tmp_out" "$out"

# 4. The size: the layers as pushed (compressed) and as unpacked.
python3 - "$out" "$tag" "$(( $(date +%s) - start ))" <<'PY'
import gzip, json, os, sys, tarfile
path, tag, seconds = sys.argv[1], sys.argv[2], sys.argv[3]
mb = lambda n: f"{n / 1e6:.1f} MB ({n:,} bytes)"
with tarfile.open(path) as archive:
    names = archive.getnames()
    read = lambda name: archive.extractfile(name).read()
    blob = lambda digest: read("blobs/" + digest.replace(":", "/"))
    if "index.json" not in names:
        print(f"image {tag}: {mb(os.path.getsize(path))} archive (docker save format)")
        sys.exit()
    index = json.loads(read("index.json"))
    manifest = json.loads(blob(index["manifests"][0]["digest"]))
    while "manifests" in manifest:  # an index (docker's containerd store): its first image
        manifest = json.loads(blob(manifest["manifests"][0]["digest"]))
    layers = manifest["layers"]
    packed = sum(layer["size"] for layer in layers)
    unpacked = sum(len(gzip.decompress(blob(l["digest"]))) if l["mediaType"].endswith("gzip")
                   else l["size"] for l in layers)
print(f"image {tag} ({index['manifests'][0]['digest']}), built in {seconds} s")
print(f"  {len(layers)} layers: {mb(packed)} compressed, {mb(unpacked)} uncompressed")
print(f"  archive {mb(os.path.getsize(path))}")
PY
echo "$out"
