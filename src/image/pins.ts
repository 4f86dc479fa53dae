/**
 * The pinned inputs of the node image that come from Debian: the kernel and the shared
 * libraries Node.js needs, each a Debian 12 (bookworm) amd64 package at one version, verified
 * by the SHA-256 of its .deb before it is unpacked. The hashes were recorded when the packages
 * were first fetched with `apt-get download NAME=VERSION` (2026-12-03, deb.debian.org and
 * security.debian.org). When a point release moves the archive on, these versions remain on
 * snapshot.debian.org; a new pin is a new image (and new reference values).
 */

export type DebianPin = {
  /** Package name, as apt-get knows it. */
  name: string;
  version: string;
  /** SHA-256 of the .deb file (lowercase hex). */
  sha256: string;
  /** The .deb's file name as apt-get download writes it. */
  file: string;
};

export const KERNEL_PIN: DebianPin = {
  name: 'linux-image-6.1.0-57-amd64',
  version: '6.1.192-3',
  sha256: '14d219d01e1283261817d961dbb3895cb5b4288d0de10e0ba0632a0d993e15bf',
  file: 'linux-image-6.1.0-57-amd64_6.1.192-3_amd64.deb',
};

/** The kernel file inside the kernel package. */
export const KERNEL_PATH = 'boot/vmlinuz-6.1.0-57-amd64';

export const LIBRARY_PINS: readonly DebianPin[] = [
  {
    name: 'libc6',
    version: '2.36-9+deb12u14',
    sha256: 'ba4f88f73dbc3ae9055f3c20f4523bfdbaf1ad13ff95e258924f77d20b4fbedf',
    file: 'libc6_2.36-9+deb12u14_amd64.deb',
  },
  {
    name: 'libgcc-s1',
    version: '12.2.0-14+deb12u1',
    sha256: '3016e62cb4b7cd8038822870601f5ed131befe942774d0f745622cc77d8a88f7',
    file: 'libgcc-s1_12.2.0-14+deb12u1_amd64.deb',
  },
  {
    name: 'libstdc++6',
    version: '12.2.0-14+deb12u1',
    sha256: '5cd3171216d4ab0fc911cfe9c35509bf2dd8f47761c43b7f6a4296701551a24d',
    file: 'libstdc++6_12.2.0-14+deb12u1_amd64.deb',
  },
];

/**
 * The libraries the npm `node` binary needs (its DT_NEEDED entries and the ELF interpreter),
 * each as [package, path inside the package (symlinks followed), path in the image].
 */
export const LIBRARIES: readonly [string, string, string][] = [
  ['libc6', 'lib/x86_64-linux-gnu/ld-linux-x86-64.so.2', 'lib/x86_64-linux-gnu/ld-linux-x86-64.so.2'],
  ['libc6', 'lib/x86_64-linux-gnu/libc.so.6', 'lib/x86_64-linux-gnu/libc.so.6'],
  ['libc6', 'lib/x86_64-linux-gnu/libdl.so.2', 'lib/x86_64-linux-gnu/libdl.so.2'],
  ['libc6', 'lib/x86_64-linux-gnu/libm.so.6', 'lib/x86_64-linux-gnu/libm.so.6'],
  ['libc6', 'lib/x86_64-linux-gnu/libpthread.so.0', 'lib/x86_64-linux-gnu/libpthread.so.0'],
  ['libgcc-s1', 'lib/x86_64-linux-gnu/libgcc_s.so.1', 'lib/x86_64-linux-gnu/libgcc_s.so.1'],
  ['libstdc++6', 'usr/lib/x86_64-linux-gnu/libstdc++.so.6', 'lib/x86_64-linux-gnu/libstdc++.so.6'],
];
