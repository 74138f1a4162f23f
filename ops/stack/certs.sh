#!/usr/bin/env bash
# Test TLS material for a service on 127.0.0.1, made with openssl:
#   DIR/ca.pem          the CA clients trust
#   DIR/NAME.pem, .key  the service's certificate (SAN IP:127.0.0.1, DNS:localhost)
#   DIR/NAME.p12        both in a PKCS12 keystore (password STORE_PASSWORD), for JVMs
# Usage: ops/stack/certs.sh DIR NAME STORE_PASSWORD
set -euo pipefail
dir="$1"; name="$2"; store_password="$3"
mkdir -p "$dir"
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=tracekeeper test CA for $name" \
  -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$dir/$name.key" -out "$dir/$name.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$dir/san.ext"
openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 30 \
  -extfile "$dir/san.ext" -out "$dir/$name.pem" 2>/dev/null
openssl pkcs12 -export -in "$dir/$name.pem" -inkey "$dir/$name.key" -certfile "$dir/ca.pem" \
  -name "$name" -out "$dir/$name.p12" -passout "pass:$store_password"
