//! Form decoding: arbitrary bytes never panic it, and what it decodes re-encodes and decodes to
//! the same pairs. Arbitrary Unicode pairs, encoded, decode back to themselves.
#![no_main]

use house::parse::decode_form;
use house_fuzz::encode_form;
use libfuzzer_sys::arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(params) = decode_form(data) {
        let encoded = encode_form(params.iter(), true, false);
        assert_eq!(decode_form(&encoded).as_ref(), Ok(&params));
    }

    let mut u = Unstructured::new(data);
    let (Ok(plus), Ok(lower), Ok(pairs)) = (
        bool::arbitrary(&mut u),
        bool::arbitrary(&mut u),
        Vec::<(String, String)>::arbitrary(&mut u),
    ) else {
        return;
    };
    let encoded = encode_form(
        pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        plus,
        lower,
    );
    let decoded = decode_form(&encoded).expect("an encoded form decodes");
    let decoded: Vec<(&str, &str)> = decoded.iter().collect();
    let expected: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    assert_eq!(decoded, expected);
});
