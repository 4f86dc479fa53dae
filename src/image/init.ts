/**
 * The node image's init: a static x86-64 Linux ELF executable of a few hundred bytes, generated
 * here byte by byte so that it needs no compiler and is the same on every machine. It is the
 * image's /init (the kernel runs it as PID 1) and it does only this:
 *
 * 1. mount proc on /proc, sysfs on /sys, devtmpfs on /dev, securityfs on /sys/kernel/security
 *    (the TPM event log) and a tmpfs on /tmp, all nosuid and noexec (nodev but /dev);
 * 2. remount / read-only, so no file of the image can be changed after boot;
 * 3. fork; the child execs `/bin/node` with fixed arguments and environment (there is no shell
 *    and nothing else can be started: any failure powers the machine off);
 * 4. reap children until node exits, sync, and power off (reboot(2) POWER_OFF).
 * A failed mount or fork writes one line to stderr and powers off.
 *
 * The program is position-dependent: one PT_LOAD segment at 0x400000 (read and execute), the
 * data (strings, argv and envp arrays) first, then the code. Instructions are encoded by hand;
 * each encoding is named beside its bytes.
 */
const BASE = 0x400000;
const EHDR = 64;
const PHDR = 56;

// mount(2) flags (include/uapi/linux/mount.h)
const MS_RDONLY = 1;
const MS_NOSUID = 2;
const MS_NODEV = 4;
const MS_NOEXEC = 8;
const MS_REMOUNT = 32;

// x86-64 syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl)
const SYS = { write: 1, fork: 57, execve: 59, exit: 60, wait4: 61, sync: 162, mount: 165, reboot: 169 };

export type InitOptions = {
  /** Absolute path of the program to run (default /bin/node). */
  program: string;
  /** Its argv, argv[0] included. */
  argv: readonly string[];
  /** Its environment, `NAME=value` strings. */
  env: readonly string[];
};

/** The mounts init performs, in order (target, fstype, flags, data). */
export const INIT_MOUNTS: readonly { target: string; fstype: string; flags: number; data?: string }[] = [
  { target: '/proc', fstype: 'proc', flags: MS_NOSUID | MS_NODEV | MS_NOEXEC },
  { target: '/sys', fstype: 'sysfs', flags: MS_NOSUID | MS_NODEV | MS_NOEXEC },
  { target: '/dev', fstype: 'devtmpfs', flags: MS_NOSUID | MS_NOEXEC },
  { target: '/sys/kernel/security', fstype: 'securityfs', flags: MS_NOSUID | MS_NODEV | MS_NOEXEC },
  { target: '/tmp', fstype: 'tmpfs', flags: MS_NOSUID | MS_NODEV | MS_NOEXEC, data: 'mode=0700' },
];

const le32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];

/** Builds the init executable. Deterministic: the same options give the same bytes. */
export function initExecutable(options: InitOptions): Uint8Array {
  // --- data ---------------------------------------------------------------------------------
  const data: number[] = [];
  const strings = new Map<string, number>();
  const str = (s: string): number => {
    const found = strings.get(s);
    if (found !== undefined) return found;
    const addr = BASE + EHDR + PHDR + data.length;
    data.push(...Buffer.from(`${s}\0`, 'utf8'));
    strings.set(s, addr);
    return addr;
  };
  const ptrArray = (items: readonly string[]): number => {
    const addrs = items.map(str);
    while (data.length % 8 !== 0) data.push(0);
    const addr = BASE + EHDR + PHDR + data.length;
    for (const a of [...addrs, 0]) data.push(...le32(a), 0, 0, 0, 0);
    return addr;
  };
  const program = str(options.program);
  const argv = ptrArray(options.argv);
  const envp = ptrArray(options.env);
  const msgMount = 'ferry-init: mount failed, powering off\n';
  const msgFork = 'ferry-init: fork failed, powering off\n';
  const msgExec = 'ferry-init: exec failed\n';
  const mounts = INIT_MOUNTS.map((m) => ({
    src: str(m.fstype),
    target: str(m.target),
    fstype: str(m.fstype),
    flags: m.flags,
    data: m.data === undefined ? 0 : str(m.data),
  }));
  const root = str('/');
  const none = str('none');
  const mMount = str(msgMount);
  const mFork = str(msgFork);
  const mExec = str(msgExec);
  while (data.length % 16 !== 0) data.push(0);

  // --- code ---------------------------------------------------------------------------------
  const code: number[] = [];
  const labels = new Map<string, number>();
  const fixups: { at: number; label: string }[] = [];
  const label = (name: string) => labels.set(name, code.length);
  const movEdi = (v: number) => code.push(0xbf, ...le32(v)); // mov edi, imm32
  const movEsi = (v: number) => code.push(0xbe, ...le32(v)); // mov esi, imm32
  const movEdx = (v: number) => code.push(0xba, ...le32(v)); // mov edx, imm32
  const movR10d = (v: number) => code.push(0x41, 0xba, ...le32(v)); // mov r10d, imm32
  const movR8d = (v: number) => code.push(0x41, 0xb8, ...le32(v)); // mov r8d, imm32
  const movEax = (v: number) => code.push(0xb8, ...le32(v)); // mov eax, imm32
  const syscall = () => code.push(0x0f, 0x05); // syscall
  const testEax = () => code.push(0x85, 0xc0); // test eax, eax
  const jump = (opcode: number[], target: string) => {
    code.push(...opcode);
    fixups.push({ at: code.length, label: target });
    code.push(0, 0, 0, 0);
  };
  const jnz = (t: string) => jump([0x0f, 0x85], t); // jnz rel32
  const je = (t: string) => jump([0x0f, 0x84], t); // je rel32
  const js = (t: string) => jump([0x0f, 0x88], t); // js rel32
  const jns = (t: string) => jump([0x0f, 0x89], t); // jns rel32
  const jmp = (t: string) => jump([0xe9], t); // jmp rel32
  const write2 = (addr: number, len: number) => {
    movEdi(2);
    movEsi(addr);
    movEdx(len);
    movEax(SYS.write);
    syscall();
  };

  for (const m of mounts) {
    movEdi(m.src);
    movEsi(m.target);
    movEdx(m.fstype);
    movR10d(m.flags);
    movR8d(m.data);
    movEax(SYS.mount);
    syscall();
    testEax();
    jnz('mount_failed');
  }
  // mount("none", "/", NULL, MS_REMOUNT | MS_RDONLY, NULL)
  movEdi(none);
  movEsi(root);
  movEdx(0);
  movR10d(MS_REMOUNT | MS_RDONLY);
  movR8d(0);
  movEax(SYS.mount);
  syscall();
  testEax();
  jnz('mount_failed');
  movEax(SYS.fork);
  syscall();
  testEax();
  js('fork_failed');
  jnz('parent');
  // child: execve(program, argv, envp); on failure write a line and exit(127)
  movEdi(program);
  movEsi(argv);
  movEdx(envp);
  movEax(SYS.execve);
  syscall();
  write2(mExec, msgExec.length);
  movEdi(127);
  movEax(SYS.exit);
  syscall();
  label('parent');
  code.push(0x41, 0x89, 0xc4); // mov r12d, eax (the child's pid)
  label('reap');
  movEdi(0xffffffff); // wait4(-1, NULL, 0, NULL)
  code.push(0x31, 0xf6); // xor esi, esi
  code.push(0x31, 0xd2); // xor edx, edx
  code.push(0x45, 0x31, 0xd2); // xor r10d, r10d
  movEax(SYS.wait4);
  syscall();
  code.push(0x44, 0x39, 0xe0); // cmp eax, r12d
  je('poweroff');
  testEax();
  jns('reap'); // another (orphaned) child was reaped: keep waiting
  code.push(0x83, 0xf8, 0xfc); // cmp eax, -4 (EINTR)
  je('reap');
  jmp('poweroff'); // no child left
  label('mount_failed');
  write2(mMount, msgMount.length);
  jmp('poweroff');
  label('fork_failed');
  write2(mFork, msgFork.length);
  label('poweroff');
  movEax(SYS.sync);
  syscall();
  movEdi(0xfee1dead); // LINUX_REBOOT_MAGIC1
  movEsi(0x28121969); // LINUX_REBOOT_MAGIC2
  movEdx(0x4321fedc); // LINUX_REBOOT_CMD_POWER_OFF
  code.push(0x45, 0x31, 0xd2); // xor r10d, r10d
  movEax(SYS.reboot);
  syscall();
  movEdi(1); // reboot refused: exit, which panics the kernel (panic= then resets)
  movEax(SYS.exit);
  syscall();
  for (const f of fixups) {
    const target = labels.get(f.label);
    if (target === undefined) throw new Error(`init: unknown label ${f.label}`);
    code.splice(f.at, 4, ...le32(target - (f.at + 4)));
  }

  // --- ELF ----------------------------------------------------------------------------------
  const fileSize = EHDR + PHDR + data.length + code.length;
  const entry = BASE + EHDR + PHDR + data.length;
  const out = new Uint8Array(fileSize);
  const dv = new DataView(out.buffer);
  out.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]); // \x7fELF, 64-bit, little-endian, version 1, SysV
  dv.setUint16(16, 2, true); // e_type = ET_EXEC
  dv.setUint16(18, 62, true); // e_machine = EM_X86_64
  dv.setUint32(20, 1, true); // e_version
  dv.setBigUint64(24, BigInt(entry), true); // e_entry
  dv.setBigUint64(32, BigInt(EHDR), true); // e_phoff
  dv.setBigUint64(40, 0n, true); // e_shoff (no sections)
  dv.setUint32(48, 0, true); // e_flags
  dv.setUint16(52, EHDR, true); // e_ehsize
  dv.setUint16(54, PHDR, true); // e_phentsize
  dv.setUint16(56, 1, true); // e_phnum
  dv.setUint16(58, 64, true); // e_shentsize
  dv.setUint16(60, 0, true); // e_shnum
  dv.setUint16(62, 0, true); // e_shstrndx
  const p = EHDR;
  dv.setUint32(p, 1, true); // p_type = PT_LOAD
  dv.setUint32(p + 4, 5, true); // p_flags = PF_R | PF_X
  dv.setBigUint64(p + 8, 0n, true); // p_offset
  dv.setBigUint64(p + 16, BigInt(BASE), true); // p_vaddr
  dv.setBigUint64(p + 24, BigInt(BASE), true); // p_paddr
  dv.setBigUint64(p + 32, BigInt(fileSize), true); // p_filesz
  dv.setBigUint64(p + 40, BigInt(fileSize), true); // p_memsz
  dv.setBigUint64(p + 48, 0x1000n, true); // p_align
  out.set(data, EHDR + PHDR);
  out.set(code, EHDR + PHDR + data.length);
  return out;
}
