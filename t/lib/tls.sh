# tls.sh: test certificates for vipmta's TLS tests, made with the openssl command (sourced after harness.sh).
# Every name this file defines starts with vt_tls_ (internal ones with vt__tls_).

# vt_tls_ca NAME: a self-signed test CA in $VT_DIR/NAME.crt / NAME.key.
vt_tls_ca() {
    vt_require openssl
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
        -subj "/CN=vipmta test CA $1" -keyout "$VT_DIR/$1.key" -out "$VT_DIR/$1.crt" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
        >"$VT_DIR/openssl-$1.log" 2>&1 || vt_error "cannot make the test CA $1: $(cat "$VT_DIR/openssl-$1.log")"
    chmod 600 "$VT_DIR/$1.key"
}

# vt_tls_cert CA NAME SAN: a server certificate signed by CA (a vt_tls_ca name, or
# "self" for a self-signed one) in $VT_DIR/NAME.crt (the chain: leaf then CA) and
# NAME.key (mode 600); SAN like "DNS:mx.example.test,IP:127.0.0.1".
vt_tls_cert() {
    vt_require openssl
    vt__tls_cn=${3#DNS:}
    vt__tls_cn=${vt__tls_cn%%,*}
    if [ "$1" = self ]; then
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
            -subj "/CN=$vt__tls_cn" -keyout "$VT_DIR/$2.key" -out "$VT_DIR/$2.crt" \
            -addext "subjectAltName=$3" >"$VT_DIR/openssl-$2.log" 2>&1 ||
            vt_error "cannot make the certificate $2: $(cat "$VT_DIR/openssl-$2.log")"
    else
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -subj "/CN=$vt__tls_cn" -keyout "$VT_DIR/$2.key" -out "$VT_DIR/$2.csr" \
            >"$VT_DIR/openssl-$2.log" 2>&1 &&
        printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' "$3" \
            >"$VT_DIR/$2.ext" &&
        openssl x509 -req -in "$VT_DIR/$2.csr" -CA "$VT_DIR/$1.crt" -CAkey "$VT_DIR/$1.key" \
            -CAcreateserial -days 30 -extfile "$VT_DIR/$2.ext" -out "$VT_DIR/$2.leaf" \
            >>"$VT_DIR/openssl-$2.log" 2>&1 ||
            vt_error "cannot make the certificate $2: $(cat "$VT_DIR/openssl-$2.log")"
        cat "$VT_DIR/$2.leaf" "$VT_DIR/$1.crt" >"$VT_DIR/$2.crt"
    fi
    chmod 600 "$VT_DIR/$2.key"
}

# vt_tls_passwd FILE METHOD USER PASSWORD...: writes FILE (mode 600) with one "user:hash"
# line per USER PASSWORD pair, hashed by libcrypt with METHOD "y" (yescrypt) or "6"
# (SHA-512-crypt).
vt_tls_passwd() {
    vt__tls_f=$1
    : >"$vt__tls_f"
    chmod 600 "$vt__tls_f"
    "$VT_PYTHON" - "$@" >>"$vt__tls_f" <<'PY' || vt_error "vt_tls_passwd: libcrypt failed"
import ctypes, sys
lib = ctypes.CDLL("libcrypt.so.1")
lib.crypt_gensalt.restype = ctypes.c_char_p
lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
lib.crypt.restype = ctypes.c_char_p
lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
method, pairs = sys.argv[2], sys.argv[3:]
for user, pw in zip(pairs[0::2], pairs[1::2]):
    setting = lib.crypt_gensalt(("$%s$" % method).encode(), 0, None, 0)
    print("%s:%s" % (user, lib.crypt(pw.encode(), setting).decode()))
PY
}
