;; memory-hog: misbehaving app for tests; declares no maximum and grows its memory by 1 MiB
;; until memory.grow fails, then traps (as an allocator that runs out of memory would).
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $grow
      (br_if $grow (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
    unreachable))
