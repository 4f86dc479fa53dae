/**
 * The node image (docs/protocol.md §17): a reproducible kernel + initrd + command line that
 * boots Node.js and Ferry's enclave runtime in a VM, and the reference values of its measured
 * boot under the pinned OVMF.
 */
export {
  type BuildOptions,
  buildImage,
  fetchDeb,
  IMAGE_CMDLINE,
  IMAGE_FILES,
  IMAGE_FORMAT,
  type ImageManifest,
  imageDigest,
  readImage,
} from './build.ts';
export { type CpioEntry, type CpioRecord, readCpio, writeCpio } from './cpio.ts';
/** The TCG event log parser lives with the tpm2 evidence it is part of (src/attestation/tpm2/eventlog.ts). */
export { EV, type LogEvent, parseEventLog, replayEventLog } from '../attestation/index.ts';
export { DEFAULT_FIRMWARE, DEFAULT_VARS, FIRMWARE, type FirmwareGolden, findGolden } from './firmware.ts';
export { INIT_MOUNTS, initExecutable } from './init.ts';
export {
  BOOT_PCRS,
  type BootInputs,
  type ExpectedEvent,
  expectedEvents,
  expectedPcrs,
  type ImageMeasurement,
  imagePolicy,
  loadOptionsDigest,
  measureImage,
} from './measure.ts';
export { authenticodeSha256, kernelEventDigest, q35Below4g, qemuPatchedKernel } from './pe.ts';
export { KERNEL_PIN, LIBRARY_PINS } from './pins.ts';
export { type BootOptions, type BootResult, bootImage, canBoot, type GuestReport } from './vm.ts';
export { type ChannelMessage, encodeLine, KIND, lineReader } from './channel.ts';
export {
  kvmUsable,
  type NodeVmConfig,
  provisionVtpm,
  startNodeVm,
  VM_AK_HANDLE,
  VM_CPUS,
  VM_MEMORY_MIB,
  VM_PCR_SELECTION,
  VmEnclaveHost,
  type VmEnclaveHostOptions,
  type VmTpm,
  type VtpmProvision,
} from './vm-enclave.ts';
