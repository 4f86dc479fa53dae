;; count-bytes: reads stdin to the end in 64 KiB reads and prints the byte count in decimal
;; followed by a newline. Used by the benchmark (it does not touch the bytes it reads).
(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 2)
  ;; iovec at 0: buf=65536 len=65536; nread at 8; output digits at 100..132; out iovec at 16
  (func (export "_start")
    (local $total i64) (local $n i32) (local $p i32)
    (i32.store (i32.const 0) (i32.const 65536))
    (i32.store (i32.const 4) (i32.const 65536))
    (block $done
      (loop $read
        (if (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8))
          (then (call $proc_exit (i32.const 2))))
        (local.set $n (i32.load (i32.const 8)))
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $total (i64.add (local.get $total) (i64.extend_i32_u (local.get $n))))
        (br $read)))
    ;; format: digits written backwards ending at 132, then '\n' at 132
    (i32.store8 (i32.const 132) (i32.const 10))
    (local.set $p (i32.const 132))
    (loop $digit
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i32.store8 (local.get $p)
        (i32.add (i32.const 48) (i32.wrap_i64 (i64.rem_u (local.get $total) (i64.const 10)))))
      (local.set $total (i64.div_u (local.get $total) (i64.const 10)))
      (br_if $digit (i64.ne (local.get $total) (i64.const 0))))
    (i32.store (i32.const 16) (local.get $p))
    (i32.store (i32.const 20) (i32.sub (i32.const 133) (local.get $p)))
    (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24)))))
