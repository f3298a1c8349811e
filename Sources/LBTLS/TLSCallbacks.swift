import COpenSSL

// Every C callback OpenSSL calls lives in this file. Each one is capture-free and calls one named Swift method.

enum TLSCallbacks {
    /// Passphrase prompt for encrypted PEM keys. OpenSSL's default would read the terminal and block a server
    /// at startup; returning -1 makes an encrypted key fail to load with a message instead.
    static let refusePassphrase: lb_pem_password_cb = { _, _, _, _ in -1 }
}
