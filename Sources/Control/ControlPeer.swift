/// Who sent the command being handled: set by ``ControlServer`` around each ``ControlHandler/handle(_:)`` call.
///
/// ```swift
/// if let pid = ControlPeer.processID { … }   // the client's process id, from SO_PEERCRED
/// ```
public enum ControlPeer {
    /// The client's process id (SO_PEERCRED), nil in-process or when the kernel did not say.
    @TaskLocal public static var processID: Int32?
}
