/**
 * The program the node image's init runs (as `/bin/node /ferry/src/image/guest.ts`). It is
 * part of the initrd and therefore of PCR 9. It imports Node.js built-ins only.
 *
 * Today it reports what the VM enclave backend (a later change) will build its evidence from,
 * and exits, which powers the VM off: one line on stdout (the serial console)
 *
 *     FERRY-IMAGE-REPORT {"node", "uptime", "runtimeMeasurement", "pcrs": {"sha256": {"0": hex, ...}},
 *                         "eventLog": base64 | null}
 *
 * with the PCRs read from /sys/class/tpm/tpm0/pcr-sha256/N and the firmware's TCG event log
 * from securityfs. Nothing here reads input: no login, no shell, no command channel.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { uptime } from 'node:os';

function tryRead(path: string): Buffer | null {
  try {
    return readFileSync(path);
  } catch {
    return null;
  }
}

const pcrs: Record<string, string> = {};
for (let i = 0; i < 24; i++) {
  const v = tryRead(`/sys/class/tpm/tpm0/pcr-sha256/${i}`);
  if (v !== null) pcrs[String(i)] = v.toString('utf8').trim().toLowerCase();
}
const log = tryRead('/sys/kernel/security/tpm0/binary_bios_measurements');
const manifest = tryRead('/ferry/runtime-manifest.txt');
const report = {
  node: process.version,
  uptime: uptime(),
  runtimeMeasurement: manifest === null ? null : createHash('sha256').update(manifest).digest('hex'),
  pcrs: { sha256: pcrs },
  eventLog: log === null ? null : log.toString('base64'),
};
process.stdout.write(`FERRY-IMAGE-REPORT ${JSON.stringify(report)}\n`);
