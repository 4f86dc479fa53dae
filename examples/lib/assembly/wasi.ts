// Minimal WASI preview 1 bindings for Ferry's AssemblyScript examples (AssemblyScript 0.28
// has no WASI layer of its own). Compiled by scripts/build-examples.ts, not by tsc.

@external("wasi_snapshot_preview1", "fd_read")
declare function fd_read(fd: i32, iovs: usize, iovsLen: i32, nread: usize): i32;
@external("wasi_snapshot_preview1", "fd_write")
declare function fd_write(fd: i32, iovs: usize, iovsLen: i32, nwritten: usize): i32;
@external("wasi_snapshot_preview1", "args_sizes_get")
declare function args_sizes_get(argc: usize, bufSize: usize): i32;
@external("wasi_snapshot_preview1", "args_get")
declare function args_get(argv: usize, buf: usize): i32;
@external("wasi_snapshot_preview1", "path_open")
declare function path_open(dirfd: i32, dirflags: i32, path: usize, pathLen: i32, oflags: i32,
  rightsBase: i64, rightsInheriting: i64, fdflags: i32, fd: usize): i32;
@external("wasi_snapshot_preview1", "proc_exit")
declare function proc_exit(code: i32): void;

const IOV: usize = memory.data(32);

/** Reads up to `len` bytes from `fd` into `buf`; returns the count (0 at end), or -errno. */
export function readFd(fd: i32, buf: usize, len: i32): i32 {
  store<u32>(IOV, <u32>buf);
  store<u32>(IOV, <u32>len, 4);
  const err = fd_read(fd, IOV, 1, IOV + 8);
  if (err != 0) return -err;
  return <i32>load<u32>(IOV + 8);
}

/** Writes all `len` bytes at `ptr` to `fd`; exits with status 3 if the host refuses. */
export function writeAll(fd: i32, ptr: usize, len: i32): void {
  while (len > 0) {
    store<u32>(IOV + 16, <u32>ptr);
    store<u32>(IOV + 16, <u32>len, 4);
    if (fd_write(fd, IOV + 16, 1, IOV + 24) != 0) proc_exit(3);
    const n = <i32>load<u32>(IOV + 24);
    ptr += n;
    len -= n;
  }
}

export function print(s: string): void {
  const b = String.UTF8.encode(s);
  writeAll(1, changetype<usize>(b), b.byteLength);
}

export function eprint(s: string): void {
  const b = String.UTF8.encode(s);
  writeAll(2, changetype<usize>(b), b.byteLength);
}

export function exit(code: i32): void {
  proc_exit(code);
}

/** argv[1..] as strings. */
export function args(): string[] {
  const sizes = memory.data(8);
  args_sizes_get(sizes, sizes + 4);
  const argc = <i32>load<u32>(sizes);
  const bufSize = <i32>load<u32>(sizes + 4);
  const argv = heap.alloc(<usize>argc * 4);
  const buf = heap.alloc(<usize>bufSize);
  args_get(argv, buf);
  const out = new Array<string>(0);
  for (let i = 1; i < argc; i++) {
    const p = <usize>load<u32>(argv + <usize>i * 4);
    let n = 0;
    while (load<u8>(p + n) != 0) n++;
    out.push(String.UTF8.decodeUnsafe(p, n));
  }
  return out;
}

/** Opens /data/NAME (the preopened fd 3) read-only; returns the fd, or -errno. */
export function openData(name: string): i32 {
  const b = String.UTF8.encode(name);
  const fdOut = memory.data(8);
  // rights: fd_read (1<<1) | fd_seek (1<<2) | fd_tell (1<<5) | fd_filestat_get (1<<21)
  const rights: i64 = (1 << 1) | (1 << 2) | (1 << 5) | (1 << 21);
  const err = path_open(3, 0, changetype<usize>(b), b.byteLength, 0, rights, 0, 0, fdOut);
  if (err != 0) return -err;
  return <i32>load<u32>(fdOut);
}
