//! The WIT package's name and version, taken from the `package` line of `worlds.wit` at
//! compile time: the one place the version is written is the contract itself, and the
//! host (what it accepts at load) and the sdk (what plugins are built against) read it
//! from here.

const WORLDS: &str = include_str!("worlds.wit");

/// `payhost:gateway`.
pub const PACKAGE: &str = package_line(WORLDS).0;
/// The package version, e.g. `0.1.0`.
pub const VERSION: &str = package_line(WORLDS).1;

/// Splits `package NAME@VERSION;` (the file's first line) into name and version.
const fn package_line(src: &str) -> (&str, &str) {
    let prefix = b"package ";
    let bytes = src.as_bytes();
    let mut i = 0;
    while i < prefix.len() {
        if i >= bytes.len() || bytes[i] != prefix[i] {
            panic!("worlds.wit must start with `package NAME@VERSION;`");
        }
        i += 1;
    }
    let (_, rest) = bytes.split_at(prefix.len());
    let at = position(rest, b'@');
    let (name, rest) = rest.split_at(at);
    let (_, rest) = rest.split_at(1);
    let end = position(rest, b';');
    let (version, _) = rest.split_at(end);
    (utf8(name), utf8(version))
}

const fn position(bytes: &[u8], byte: u8) -> usize {
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == byte {
            return i;
        }
        i += 1;
    }
    panic!("worlds.wit's package line must read `package NAME@VERSION;`");
}

const fn utf8(bytes: &[u8]) -> &str {
    match core::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(_) => panic!("worlds.wit is not UTF-8"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_package_line() {
        assert_eq!(super::package_line("package a:b@1.2.3;\nworld x {}"), ("a:b", "1.2.3"));
        assert_eq!(super::PACKAGE, "payhost:gateway");
        assert!(!super::VERSION.is_empty());
    }
}
