//! Who this process is in the database's leases — and whether a holder named there is a dead
//! process of this very machine, whose lease need not be waited out.

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Which process table this process's pid belongs to: the host name for people, and the boot
/// id and pid namespace so that two machines (or containers) with one host name never pass
/// for one. `None` where they can't be read: then no holder is ever judged dead from here.
fn process_table() -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let namespace = std::fs::read_link("/proc/self/ns/pid").ok()?;
    let namespace = namespace.to_string_lossy();
    let namespace = namespace.trim_start_matches("pid:[").trim_end_matches(']');
    Some(format!("{}/{}/{namespace}", host_name(), boot.trim()))
}

/// `host/boot/pidns:pid:nonce` — unique per process, and tells an operator which machine holds
/// a lease.
pub(crate) fn instance_id() -> String {
    let nonce = time::OffsetDateTime::now_utc().unix_timestamp_nanos() % 1_000_000_000;
    let table = process_table().unwrap_or_else(host_name);
    format!("{table}:{}:{nonce:09}", std::process::id())
}

/// Whether `holder` names a process of this very process table (same boot, same pid
/// namespace) that no longer runs. Any other holder is assumed alive until its lease expires.
pub fn holder_is_gone(holder: &str) -> bool {
    let mut parts = holder.rsplitn(3, ':');
    let (Some(_nonce), Some(pid), Some(table)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    process_table().is_some_and(|ours| ours == table)
        && pid
            .parse::<u32>()
            .is_ok_and(|pid| pid != std::process::id())
        && !std::path::Path::new("/proc").join(pid).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_dead_process_of_this_machine_is_gone() {
        let table = process_table().expect("Linux");
        assert!(holder_is_gone(&format!("{table}:999999999:000000001")));
        assert!(!holder_is_gone(&format!(
            "{table}:{}:1",
            std::process::id()
        )));
        assert!(!holder_is_gone("another-machine:999999999:1"));
        // Same host name, another boot or pid namespace: can't be judged from here.
        assert!(!holder_is_gone(&format!("{}:999999999:1", host_name())));
        assert!(!holder_is_gone("not a holder id"));
        assert!(!holder_is_gone(&instance_id()));
    }
}
