<?php
// Prints test vectors for payhost-sdk's PHP reproductions (src/php.rs), one JSON array per
// line: [kind, input, output]. The output is what this PHP produced, so the Rust tests
// check against real PHP without needing PHP at test time. Regenerate with
//   php plugins/sdk/tests/php/vectors.php > plugins/sdk/tests/php_vectors.txt
// The flags below only make the vector file readable; the outputs under test use defaults.
ini_set('precision', '14');
ini_set('serialize_precision', '-1');
mt_srand(20240229);

// UTF-8 bytes of a code point (mbstring is an optional extension; this needs none).
function utf8_chr($cp) {
    if ($cp < 0x80) {
        return chr($cp);
    }
    if ($cp < 0x800) {
        return chr(0xc0 | ($cp >> 6)) . chr(0x80 | ($cp & 0x3f));
    }
    if ($cp < 0x10000) {
        return chr(0xe0 | ($cp >> 12)) . chr(0x80 | (($cp >> 6) & 0x3f)) . chr(0x80 | ($cp & 0x3f));
    }
    return chr(0xf0 | ($cp >> 18)) . chr(0x80 | (($cp >> 12) & 0x3f))
        . chr(0x80 | (($cp >> 6) & 0x3f)) . chr(0x80 | ($cp & 0x3f));
}

function emit($kind, $input, $output) {
    echo json_encode([$kind, $input, $output], JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES), "\n";
}

// floatval($s) concatenated into a string, as WebTV's recurring signature does.
$floats = [
    "10.50", "5.00", "5", "10.5", "0", "0.0", "-0", "-0.0", "", "1e3", "1E3", "1e+3", "1.5e-7",
    "12abc", "abc", " 12", "\t5", "\r5", "\x0b5", "\f5", "\n5", " \t\n5", "5 ", " -5", " - 5",
    "- 5", "--5", "+5", "1.2.3", "1e-2e3", "00012", "1_000", ".5", "5.", ".", "-.", "-.5e1",
    "1e", "5e-", "5e+", "5e+3x", "0x1A", "inf", "-inf", "nan", "INF", "1E400", "-1e400",
    "0.1", "0.2", "0.3", "0.30000000000000004", "0.1e1", "100", "1000000", "99999999999999",
    "100000000000000", "123456789012345", "1e14", "1e15", "1e16", "1e21", "1e22", "1e308",
    "1.7976931348623157e308", "4.9e-324", "2.5e-320", "0.0001", "0.00001", "0.00012345",
    "1e-4", "1e-5", "-1e-5", "123456789.123456789", "1.00000000000005", "1.000000000000051",
    "9.99999999999995", "10000000000000.5", "10000000000001.5", "0.5", "2.5", "-2.5",
    "19.99", "29.90", "4.99", "1234.5678", "-10.50", "12,50", "1 000", "٣", "１２",
];
foreach ($floats as $s) {
    emit("floatval", $s, "" . floatval($s));
}
for ($i = 0; $i < 400; $i++) {
    // Prices as stores write them.
    $s = mt_rand(0, 99999) . "." . sprintf("%02d", mt_rand(0, 99));
    emit("floatval", $s, "" . floatval($s));
}
for ($i = 0; $i < 400; $i++) {
    // Arbitrary doubles over many magnitudes, written with 17 digits so the string
    // parses back to the same double.
    $v = (mt_rand() / mt_getrandmax()) * pow(10, mt_rand(-30, 30));
    if (mt_rand(0, 1)) {
        $v = -$v;
    }
    $s = sprintf("%.17g", $v);
    emit("floatval", $s, "" . floatval($s));
}

// json_encode of strings and of associative arrays of strings (default flags).
$strings = [
    "", "plain", "a/b", "http://x.y/z?a=1&b=2", "\"quoted\"", "back\\slash", "tab\there",
    "line\nbreak", "cr\rlf", "\x08\x0c", "\x00\x01\x1f", "\x7f", "<tag>&'", "Заказ №5/7",
    "ÿ", "€", "😀", "a😀b", "\u{2028}\u{2029}", "\u{feff}", "\u{10ffff}", "日本語", "ñandú",
    "Perfil inválido", "10.50", "SKU/ÄÖÜ/𝄞",
];
for ($i = 0; $i < 200; $i++) {
    $s = "";
    $n = mt_rand(1, 6);
    for ($j = 0; $j < $n; $j++) {
        $range = mt_rand(0, 4);
        if ($range == 0) {
            $cp = mt_rand(0, 0x7f);
        } elseif ($range == 1) {
            $cp = mt_rand(0x80, 0x7ff);
        } elseif ($range == 2) {
            $cp = mt_rand(0x800, 0xd7ff);
        } elseif ($range == 3) {
            $cp = mt_rand(0xe000, 0xffff);
        } else {
            $cp = mt_rand(0x10000, 0x10ffff);
        }
        $s .= utf8_chr($cp);
    }
    $strings[] = $s;
}
foreach ($strings as $s) {
    emit("json_string", $s, json_encode($s));
}
$objects = [
    [["id_gateway", "3"], ["id_order", "99"], ["amount", "10.50"], ["currency_code", "USD"], ["order_number", "A/1"]],
    [["id_gateway", "3"], ["id_order", "99"], ["status", "SUCCESS"], ["id_transaction", "tx-1"]],
    [["action", "rp_status"], ["profile_id", "rp-3-99-0"]],
    [["k", "Заказ 😀"], ["x/y", "\n"]],
];
foreach ($objects as $pairs) {
    $assoc = [];
    foreach ($pairs as $p) {
        $assoc[$p[0]] = $p[1];
    }
    emit("json_object", $pairs, json_encode($assoc));
}

// urlencode / rawurlencode of the same strings (the return URL uses urlencode).
foreach (array_merge($strings, [" space ", "a*b~c-_.!'()+", "%41", "=&?#"]) as $s) {
    emit("urlencode", $s, urlencode($s));
    emit("rawurlencode", $s, rawurlencode($s));
}
foreach (["a%2Fb", "%D0%97%D0%B0", "a+b", "%zz%4", "100%", "%41%42c"] as $s) {
    emit("rawurldecode", $s, rawurldecode($s));
}
