import DevtsRuntime
import Testing

@Suite struct UVErrorTests {
    @Test(arguments: [
        (UVError.eof, "EOF", "end of file"),
        (.connectionRefused, "ECONNREFUSED", "connection refused"),
        (.connectionReset, "ECONNRESET", "connection reset by peer"),
        (.canceled, "ECANCELED", "operation canceled"),
        (.addressInUse, "EADDRINUSE", "address already in use"),
        (.invalidArgument, "EINVAL", "invalid argument"),
        (.timedOut, "ETIMEDOUT", "connection timed out"),
        (.brokenPipe, "EPIPE", "broken pipe"),
    ])
    func namesAndMessagesComeFromLibuv(error: UVError, name: String, message: String) {
        #expect(error.code < 0)
        #expect(error.name == name)
        #expect(error.message == message)
        #expect(error.description == "\(name): \(message)")
    }

    @Test func theOperationIsContextNotIdentity() {
        let error = UVError(code: UVError.connectionRefused.code, operation: "connect to 127.0.0.1:9")
        #expect(error.description == "connect to 127.0.0.1:9 failed: ECONNREFUSED: connection refused")
        #expect(error == .connectionRefused)
        #expect(error.hashValue == UVError.connectionRefused.hashValue)
        #expect(error != .connectionReset)
        #expect(Set([error, .connectionRefused, .eof]).count == 2)
    }

    @Test func catchClausesMatchByCode() {
        func classify(_ error: any Error) -> String {
            do {
                throw error
            } catch UVError.eof {
                return "eof"
            } catch UVError.connectionRefused {
                return "refused"
            } catch {
                return "other"
            }
        }
        #expect(classify(UVError(code: UVError.eof.code, operation: "read")) == "eof")
        #expect(classify(UVError(code: UVError.connectionRefused.code, operation: "connect")) == "refused")
        #expect(classify(UVError.brokenPipe) == "other")
        #expect(classify(TCPConnection.CloseReason.local) == "other")
    }

    @Test func allNamedErrorsAreDistinct() {
        let all: [UVError] = [.eof, .connectionRefused, .connectionReset, .canceled, .addressInUse,
                              .invalidArgument, .timedOut, .brokenPipe]
        #expect(Set(all.map(\.code)).count == all.count)
    }

    @Test func closeReasonsDescribeThemselves() {
        #expect(TCPConnection.CloseReason.local.description == "closed locally")
        #expect(TCPConnection.CloseReason.peerClosed.description == "closed by the peer")
        #expect(TCPConnection.CloseReason.frameTooLarge(length: 20, maximum: 10).description
            == "frame of 20 bytes exceeds the maximum of 10")
        let error = UVError(code: UVError.connectionReset.code, operation: "read")
        #expect(TCPConnection.CloseReason.error(error).description
            == "read failed: ECONNRESET: connection reset by peer")
        #expect(EventLoopError.loopCloseFailed(UVError.busyCode).description
            == "uv_loop_close failed: EBUSY: resource busy or locked (a handle was left open)")
    }
}

extension UVError {
    /// UV_EBUSY, which `uv_loop_close` returns while a handle is open (-16 on Linux).
    static let busyCode: Int32 = -16
}
