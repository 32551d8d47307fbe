//! Free space on the recordings disk.

use std::path::Path;

/// Bytes available to this process on the file system holding `path` (or its nearest existing parent).
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    let mut at = path;
    loop {
        if at.exists() {
            break;
        }
        match at.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => at = parent,
            _ => {
                at = Path::new(".");
                break;
            }
        }
    }
    let stat = nix::sys::statvfs::statvfs(at).map_err(std::io::Error::from)?;
    // The field types are platform-sized (u32 on some 32-bit systems), hence the conversions.
    #[allow(clippy::useless_conversion)]
    Ok(u64::from(stat.blocks_available()).saturating_mul(u64::from(stat.fragment_size())))
}

#[cfg(test)]
mod tests {
    #[test]
    fn reports_space_for_missing_paths_via_their_parent() {
        let free = super::free_bytes(std::path::Path::new("/tmp/does/not/exist")).unwrap();
        assert!(free > 0);
    }
}
