/// The version reported by `--version`, `/api/stats` and the `lb_build_info` metric.
public enum LBVersion {
    public static let current = "0.1.0"
}
