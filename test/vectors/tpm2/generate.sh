#!/usr/bin/env bash
# Regenerates the captured tpm2 quote sets in this directory with swtpm + tpm2-tools only
# (no Ferry code), so parser tests read what the real tools write. See README.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# manufacture <dir> <port>: a swtpm with sha1/sha256/sha384 banks and an EK certificate from
# swtpm_localca, config files in <dir>, served on 127.0.0.1:<port> (control on <port>+1).
manufacture() {
  local d="$1" port="$2"
  mkdir -p "$d/ca" "$d/state"
  printf 'statedir = %s\nsigningkey = %s/signkey.pem\nissuercert = %s/issuercert.pem\ncertserial = %s/certserial\n' \
    "$d/ca" "$d/ca" "$d/ca" "$d/ca" > "$d/swtpm-localca.conf"
  printf -- '--platform-manufacturer Ferry\n--platform-version 2.1\n--platform-model swtpm\n' > "$d/swtpm-localca.options"
  printf 'create_certs_tool = /usr/bin/swtpm_localca\ncreate_certs_tool_config = %s/swtpm-localca.conf\ncreate_certs_tool_options = %s/swtpm-localca.options\nactive_pcr_banks = sha1,sha256,sha384\n' \
    "$d" "$d" > "$d/swtpm_setup.conf"
  swtpm_setup --tpm2 --tpmstate "$d/state" --config "$d/swtpm_setup.conf" --create-ek-cert \
    --create-platform-cert --lock-nvram --overwrite --pcr-banks sha1,sha256,sha384 > /dev/null
  swtpm socket --tpm2 --server type=tcp,port="$port",bindaddr=127.0.0.1 \
    --ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 --tpmstate dir="$d/state" \
    --flags not-need-init,startup-clear &
  pids+=($!)
  sleep 0.5
}

port=$((30000 + RANDOM % 10000 * 2))
manufacture "$work/a" "$port"
export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$port"
out="$here"
tpm2_nvread 0x1c00002 -o "$work/ek.nv"
openssl x509 -inform der -in "$work/ek.nv" -outform der -out "$out/ek-cert.der"
cp "$work/a/ca/issuercert.pem" "$out/ca-issuer.pem"
cp "$work/a/ca/swtpm-localca-rootca-cert.pem" "$out/ca-root.pem"
# Known PCR contents: extend 16 (debug) and 23 (Ferry runtime) in every bank.
tpm2_pcrextend 16:sha1=$(printf debug | sha1sum | cut -c1-40),sha256=$(printf debug | sha256sum | cut -c1-64),sha384=$(printf debug | sha384sum | cut -c1-96)
tpm2_pcrextend 23:sha1=$(printf runtime | sha1sum | cut -c1-40),sha256=$(printf runtime | sha256sum | cut -c1-64),sha384=$(printf runtime | sha384sum | cut -c1-96)
# The nonce: SHA256(report_data) with report_data = bytes 0x00..0x3f.
rd=$(python3 -c 'print(bytes(range(64)).hex())')
nonce=$(printf '%s' "$rd" | xxd -r -p | sha256sum | cut -c1-64)
printf '%s\n' "$rd" > "$out/report-data.hex"
printf '%s\n' "$nonce" > "$out/nonce.hex"

# set <name> <handle> <createak -G> <-s scheme> <-g hash> <pcr list>
set_() {
  local name="$1" h="$2" G="$3" s="$4" g="$5" l="$6" d="$out/$1"
  mkdir -p "$d"
  tpm2_createak -C 0x81010001 -c "$work/$name.ctx" -G "$G" -g "$g" -s "$s" -u "$d/ak.tpm2b" -n "$d/ak.name" -f tss > /dev/null
  tpm2_evictcontrol -C o -c "$work/$name.ctx" "$h" > /dev/null
  tpm2_flushcontext -t
  tpm2_readpublic -c "$h" -f pem -o "$d/ak.pem" > /dev/null
  tpm2_quote -c "$h" -l "$l" -q "$nonce" -m "$d/quote.msg" -s "$d/quote.sig" -o "$d/pcrs.bin" -g "$g" --scheme "$s" > /dev/null
  tpm2_pcrread "$l" > "$d/pcrs.yaml"
  python3 - "$d/pcrs.yaml" "$d/pcrs.json" <<'PY'
import json, re, sys
banks, bank = {}, None
for line in open(sys.argv[1]):
    m = re.match(r'^  (sha\d+):\s*$', line)
    if m:
        bank = m.group(1); banks[bank] = {}; continue
    m = re.match(r'^    (\d+)\s*:\s*0x([0-9A-Fa-f]+)', line)
    if m and bank:
        banks[bank][m.group(1)] = m.group(2).lower()
json.dump(banks, open(sys.argv[2], 'w'), indent=1, sort_keys=True)
PY
  rm "$d/pcrs.yaml"
  printf '%s\n' "$l" > "$d/selection.txt"
}
set_ rsa-sha256 0x81010002 rsa rsassa sha256 'sha1:0,16,23+sha256:0,1,2,3,4,5,6,7,16,23+sha384:0,23'
set_ ecc-sha256 0x81010003 ecc ecdsa sha256 'sha256:0,16,23'
set_ rsapss-sha256 0x81010004 rsa rsapss sha256 'sha256:0,23'
set_ rsa-sha384-sha1bank 0x81010005 rsa rsassa sha384 'sha1:0,1,2,3,4,5,6,7,8,9,10,16,23'

# Another TPM's AK: must not verify any quote above.
port2=$((port + 2))
manufacture "$work/b" "$port2"
TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$port2" tpm2_createak -C 0x81010001 -c "$work/o.ctx" -G rsa -g sha256 -s rsassa -u "$out/other-ak.tpm2b" -f tss > /dev/null
cp "$work/b/ca/swtpm-localca-rootca-cert.pem" "$out/other-ca-root.pem"
date -u +%Y-%m-%d > "$out/GENERATED"
