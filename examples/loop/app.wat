;; loop: misbehaving app for tests; spins forever without calling the host.
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $forever (br $forever))))
