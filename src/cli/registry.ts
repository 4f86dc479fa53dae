/**
 * Every CLI command: path, one-line summary, and a lazy import of its module.
 * Keep entries sorted by group; each group lives in its own folder under src/cli/.
 */
import type { Command } from './command.ts';

export type Entry = { name: string; summary: string; load: () => Promise<{ default: Command }> };

export const COMMANDS: Entry[] = [
  {
    name: 'app ls',
    summary: 'list the apps registered on chain',
    load: () => import('./app/ls.ts'),
  },
  {
    name: 'app new',
    summary: 'write a template app (C, Rust or AssemblyScript) that reads datasets and arguments',
    load: () => import('./app/new.ts'),
  },
  {
    name: 'app publish',
    summary: "encrypt a WASM app into the profile's agent and register it with its measurement",
    load: () => import('./app/publish.ts'),
  },
  {
    name: 'app run',
    summary: 'run a WASI app locally in the enclave runtime (sim backend, plaintext data)',
    load: () => import('./app/run.ts'),
  },
  {
    name: 'agent start',
    summary: "run a profile's owner agent until interrupted",
    load: () => import('./agent/start.ts'),
  },
  {
    name: 'attest verify sev-snp',
    summary: 'verify an AMD SEV-SNP attestation report with its VCEK and appraise it against a policy',
    load: () => import('./attest/verify-sev-snp.ts'),
  },
  {
    name: 'attest verify sgx',
    summary: 'verify an Intel SGX DCAP quote with its collateral and appraise it against a policy',
    load: () => import('./attest/verify-sgx.ts'),
  },
  {
    name: 'attest verify tdx',
    summary: 'verify an Intel TDX DCAP quote with its collateral and appraise it against a policy',
    load: () => import('./attest/verify-tdx.ts'),
  },
  {
    name: 'attest verify tpm2',
    summary: 'verify a TPM 2.0 quote (tpm2-tools files) and appraise it against a policy',
    load: () => import('./attest/verify-tpm2.ts'),
  },
  {
    name: 'chain deploy',
    summary: "deploy Ferry's contracts to an EVM chain (key from FERRY_DEPLOYER_KEY or --key-file)",
    load: () => import('./chain/deploy.ts'),
  },
  {
    name: 'chain up',
    summary: 'start a local chain (anvil on 127.0.0.1) with Ferry deployed; runs until interrupted',
    load: () => import('./chain/up.ts'),
  },
  {
    name: 'committee',
    summary: 'capture and liveness-failure probabilities of a verifier committee (Poisson model)',
    load: () => import('./committee.ts'),
  },
  {
    name: 'dashboard',
    summary: 'serve a web page of the network: nodes, tasks with their timelines, votes',
    load: () => import('./dashboard/start.ts'),
  },
  {
    name: 'dataset add',
    summary: "encrypt a dataset into the profile's agent and register it with its policy",
    load: () => import('./dataset/add.ts'),
  },
  {
    name: 'dataset ls',
    summary: 'list the datasets registered on chain',
    load: () => import('./dataset/ls.ts'),
  },
  {
    name: 'dataset revoke',
    summary: 'revoke a dataset (owner only): no new task may use it',
    load: () => import('./dataset/revoke.ts'),
  },
  {
    name: 'demo',
    summary: 'run the whole network locally: a CSV-statistics task, verified end to end',
    load: () => import('./demo.ts'),
  },
  {
    name: 'devnet down',
    summary: 'stop the running local network',
    load: () => import('./devnet/down.ts'),
  },
  {
    name: 'devnet up',
    summary: 'start a local network: chain, contracts, nodes, agents and funded profiles',
    load: () => import('./devnet/up.ts'),
  },
  {
    name: 'decrypt',
    summary: 'decrypt an age file with identity files (like age -d)',
    load: () => import('./age/decrypt.ts'),
  },
  {
    name: 'encrypt',
    summary: 'encrypt a file to age recipients (like age -e)',
    load: () => import('./age/encrypt.ts'),
  },
  {
    name: 'keygen',
    summary: 'generate an age X25519 identity (like age-keygen)',
    load: () => import('./age/keygen.ts'),
  },
  {
    name: 'image build',
    summary: 'build the node image (pinned Debian kernel, Node.js, the enclave runtime) reproducibly',
    load: () => import('./image/build.ts'),
  },
  {
    name: 'image measure',
    summary:
      "print a node image's measured-boot reference values (PCR 0-7, 9) and write the policy pinning them",
    load: () => import('./image/measure.ts'),
  },
  {
    name: 'measure',
    summary: "print a WASM app's measurement (SHA-256 of the module, as app publish registers it)",
    load: () => import('./measure/app.ts'),
  },
  {
    name: 'measure runtime',
    summary: "print the enclave runtime's measurement and the reference values that pin it",
    load: () => import('./measure/runtime.ts'),
  },
  {
    name: 'node start',
    summary: 'run a node (executor and/or verifier) until interrupted',
    load: () => import('./node/start.ts'),
  },
  {
    name: 'node unjail',
    summary: "return the profile's jailed node to active once its jail has ended",
    load: () => import('./node/unjail.ts'),
  },
  {
    name: 'nodes ls',
    summary: 'list the nodes in the registry: roles, region, TEE kinds, status, stake, operator',
    load: () => import('./nodes/ls.ts'),
  },
  {
    name: 'profile create',
    summary: 'create a profile: an EVM account, an Ed25519 signing key and an age identity',
    load: () => import('./profile/create.ts'),
  },
  {
    name: 'profile ls',
    summary: 'list profiles',
    load: () => import('./profile/ls.ts'),
  },
  {
    name: 'profile show',
    summary: 'show the public parts of a profile',
    load: () => import('./profile/show.ts'),
  },
  {
    name: 'receipt verify',
    summary: "verify a completed task's receipt, evidence, votes and VRF proofs from the chain",
    load: () => import('./receipt/verify.ts'),
  },
  {
    name: 'task challenge',
    summary: 'prove a false vote or claim on chain (a fraud proof): the liar is slashed',
    load: () => import('./task/challenge.ts'),
  },
  {
    name: 'task ls',
    summary: 'list the tasks on chain with their status',
    load: () => import('./task/ls.ts'),
  },
  {
    name: 'task result',
    summary: "fetch, verify and decrypt a completed task's result (the requester's profile)",
    load: () => import('./task/result.ts'),
  },
  {
    name: 'task run',
    summary: 'run an app on datasets; with --wait, follow it, verify the receipt and decrypt the result',
    load: () => import('./task/run.ts'),
  },
  {
    name: 'task show',
    summary: "a task's state, timeline and votes from the chain",
    load: () => import('./task/show.ts'),
  },
  {
    name: 'vrf keygen',
    summary: 'generate an RFC 9381 VRF key pair',
    load: () => import('./vrf/keygen.ts'),
  },
  {
    name: 'vrf prove',
    summary: 'prove a VRF output for an input with a secret key',
    load: () => import('./vrf/prove.ts'),
  },
  {
    name: 'vrf verify',
    summary: 'verify a VRF proof under a public key and print its output',
    load: () => import('./vrf/verify.ts'),
  },
];
