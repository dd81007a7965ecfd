/*
 * compat.c: libjam-tls-compat.so, what Debian's civetweb 1.15 needs to
 * serve HTTPS with OpenSSL 3.
 *
 * civetweb loads OpenSSL at run time (dlopen("libssl.so"), then dlsym by
 * name) and calls SSL_get_peer_certificate on every TLS connection; OpenSSL
 * 3 no longer exports that name (it became a macro for
 * SSL_get1_peer_certificate), so civetweb calls a NULL pointer and the
 * process dies (civetweb issue #1334).  This library is named "libssl.so"
 * (its SONAME) and depends on the real libssl.so.3.  jam-shim loads it
 * before starting civetweb; civetweb's dlopen("libssl.so") then finds it
 * already loaded, and dlsym finds the old name here and every other name in
 * the real library behind it.
 */
typedef struct ssl_st SSL;
typedef struct x509_st X509;

extern X509 *SSL_get1_peer_certificate(const SSL *ssl);
X509	   *SSL_get_peer_certificate(const SSL *ssl);

/* OpenSSL 1.1's name: the peer's certificate, with a reference the caller frees. */
X509 *
SSL_get_peer_certificate(const SSL *ssl)
{
	return SSL_get1_peer_certificate(ssl);
}
