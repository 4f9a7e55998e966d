//! The inventory reader and validation on arbitrary bytes: never a panic, and every problem
//! it reports names the file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = std::path::Path::new("fuzz.toml");
    if let Err(keyfire::inventory::InventoryError::Invalid(problems)) =
        keyfire::inventory::load_str(path, text)
    {
        for p in problems {
            assert_eq!(p.path, path);
            assert!(p.line >= 1 && p.column >= 1);
        }
    }
});
