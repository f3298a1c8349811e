import CLibUV

/// A negative libuv status, typed at the boundary: compare with `UV_EOF`, never a literal.
public struct UVError: Error, CustomStringConvertible, Equatable, Sendable {
    public let code: Int32

    public init(_ code: Int32) { self.code = code }

    public var isEOF: Bool { code == UV_EOF.rawValue }

    /// The end of the peer's input (for streams that learn of it other than from libuv, such as TLS).
    public static let eof = UVError(UV_EOF.rawValue)

    public var name: String { String(cString: uv_err_name(code)) }
    public var description: String { "\(name): \(String(cString: uv_strerror(code)))" }

    /// Throws when `status` is negative; otherwise returns it.
    @discardableResult
    static func check(_ status: Int32, _ what: @autoclosure () -> String = "") throws(SetupError) -> Int32 {
        if status < 0 {
            let context = what()
            throw SetupError(context.isEmpty ? UVError(status).description : "\(context): \(UVError(status))")
        }
        return status
    }
}

/// A setup failure (bind, listen, resolve, config) with a message a person can act on.
public struct SetupError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
