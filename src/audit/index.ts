/**
 * The auditor's view (docs/protocol.md section 15): verify a completed task from chain data
 * alone, and the receipt bundle that carries what the chain does not hold.
 */
export {
  BUNDLE_FORMAT,
  bundleToJson,
  parseBundle,
  type ReceiptBundle,
  type ReceiptBundleJson,
  ReceiptBundleSchema,
} from './bundle.ts';
export { eventsOfAttempt, eventsOfTask, eventsSince, nodeAt } from './events.ts';
export {
  AUDIT_CHECKS,
  type AuditCheck,
  type AuditOptions,
  type AuditReport,
  auditToJson,
  verifyTaskFromChain,
} from './verify.ts';
