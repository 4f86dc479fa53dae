;; cat: copies stdin to stdout unchanged. Used by tests to see exactly which bytes the app saw.
(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 2)
  (func (export "_start")
    (local $n i32)
    (i32.store (i32.const 0) (i32.const 65536))
    (i32.store (i32.const 4) (i32.const 65536))
    (loop $read
      (if (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8))
        (then (call $proc_exit (i32.const 2))))
      (local.set $n (i32.load (i32.const 8)))
      (if (local.get $n)
        (then
          (i32.store (i32.const 16) (i32.const 65536))
          (i32.store (i32.const 20) (local.get $n))
          (if (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24))
            (then (call $proc_exit (i32.const 3))))
          (br $read))))))
