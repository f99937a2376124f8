use super::cpu::cpu_ticks;
use super::logs::{Event, Kind, View, parse_line, parse_rfc3339_us};
use super::priority::{thread_id, thread_nice};
use super::*;

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn arguments() {
    assert_eq!(ChaosArgs::parse(&[]).unwrap(), ChaosArgs::default());
    let a = ChaosArgs::parse(&args(&["--nodes", "5", "--soak=20", "--idle", "16"])).unwrap();
    assert_eq!((a.nodes, a.soak, a.idle), (5, 20, 16));
    assert!(a.wants(Scenario::Idle) && a.wants(Scenario::Loss));
    let a = ChaosArgs::parse(&args(&["--only", "loss,idle", "--only=idle"])).unwrap();
    assert_eq!(a.only, [Scenario::Loss, Scenario::Idle]);
    assert!(!a.wants(Scenario::Partition));
    assert!(ChaosArgs::parse(&args(&["--only", "flood"])).is_err());
    assert!(ChaosArgs::parse(&args(&["--nodes", "1"])).is_err());
    assert!(ChaosArgs::parse(&args(&["--idle", "0"])).is_err());
    assert!(ChaosArgs::parse(&args(&["--soak"])).is_err());
    assert!(ChaosArgs::parse(&args(&["--bogus"])).is_err());
}

#[test]
fn timestamps() {
    assert_eq!(parse_rfc3339_us("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(parse_rfc3339_us("1970-01-01T00:00:01.5Z"), Some(1_500_000));
    assert_eq!(parse_rfc3339_us("2000-03-01T00:00:00.000001Z"), Some(951_868_800_000_001));
    assert_eq!(parse_rfc3339_us("2024-02-29T12:00:00+01:00"), Some(1_709_204_400_000_000));
    assert_eq!(parse_rfc3339_us("2026-12-04T22:51:45.538404Z"), Some(1_796_424_705_538_404));
    assert_eq!(parse_rfc3339_us("meshd:"), None);
    assert_eq!(parse_rfc3339_us("2026-12-04T22:51:45.Z"), None);
}

#[test]
fn membership_lines() {
    let joined = "2026-12-04T22:51:46.046279Z  INFO mesh::node::handshake: member joined \
                  peer=0x0d87fb9df4857319 addr=127.0.0.1:55709";
    assert_eq!(
        parse_line(joined.as_bytes(), 7),
        Some((1_796_424_706_046_279, 0x0d87_fb9d_f485_7319, Kind::Joined))
    );
    let left = "2026-12-04T22:51:50.841483Z  INFO mesh::node::maintain: member left the \
                cluster node=0x7bf04d03b7c27759 addr=127.0.0.1:37943";
    assert_eq!(parse_line(left.as_bytes(), 7).map(|l| l.2), Some(Kind::Left));
    let suspect = "T  WARN mesh::node::maintain: member suspect (degraded) node=0x1 \
                   addr=127.0.0.1:1 reason=missed probes: silent for 612 ms was=\"healthy\"";
    assert_eq!(parse_line(suspect.as_bytes(), 7), Some((7, 1, Kind::Suspect)));
    let rejoined = "x member rejoined peer=0x2 addr=127.0.0.1:2";
    assert_eq!(parse_line(rejoined.as_bytes(), 7), Some((7, 2, Kind::Rejoined)));
    assert_eq!(
        parse_line("x member unreachable node=0x3 reason=no reply".as_bytes(), 7).unwrap().2,
        Kind::Unreachable
    );
    assert_eq!(
        parse_line(b"x member healthy again node=0x4 was=\"degraded\"", 7).unwrap().2,
        Kind::Healthy
    );
    assert_eq!(parse_line("x listening node=0x5 addr=127.0.0.1:3".as_bytes(), 7), None);
}

#[test]
fn views_converge_at_the_last_healthy_pair() {
    let mut view = View::new(&[10, 11, 12], Vec::new());
    let ev = |ts, observer, peer, kind| Event { ts, observer, peer, kind };
    for (i, (o, p)) in [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0)].into_iter().enumerate() {
        view.apply(ev(i as u64, o, p, Kind::Joined));
    }
    assert_eq!(view.first_all_healthy(0), None);
    view.apply(ev(10, 2, 1, Kind::Suspect));
    view.apply(ev(20, 2, 1, Kind::Healthy));
    assert_eq!(view.first_all_healthy(0), Some(20));
    view.apply(ev(30, 0, 2, Kind::Unreachable));
    view.apply(ev(31, 1, 2, Kind::Unreachable));
    assert!(!view.all_healthy());
    assert_eq!(view.first_about(2, 25, &[Kind::Unreachable]), [Some(30), Some(31)]);
    view.apply(ev(40, 0, 2, Kind::Rejoined));
    assert!(!view.all_healthy());
    view.apply(ev(41, 0, 2, Kind::Healthy));
    view.apply(ev(42, 1, 2, Kind::Healthy));
    assert_eq!(view.first_all_healthy(25), Some(42));
    assert_eq!(view.false_failures(0, 35), (2, 1));
    assert_eq!(view.false_failures(15, 35), (2, 0));
}

#[test]
fn healthy_again_right_after_joined_means_the_first_label_was_not_healthy() {
    let mut view = View::new(&[10, 11], Vec::new());
    let ev = |ts, observer, peer, kind| Event { ts, observer, peer, kind };
    view.apply(ev(1, 0, 1, Kind::Joined));
    view.apply(ev(2, 1, 0, Kind::Joined));
    assert_eq!(view.first_all_healthy(0), Some(2));
    view.apply(ev(9, 1, 0, Kind::Healthy));
    assert_eq!(view.first_all_healthy(0), Some(9));
}

#[test]
fn stat_fields() {
    let me = std::process::id();
    assert!(cpu_ticks(me).is_ok());
    assert!(thread_nice().is_some_and(|n| (-20..=19).contains(&n)));
    assert!(thread_id().is_some());
}
