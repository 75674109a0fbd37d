// Package ident parses, validates and generates the identifiers the hub
// deals in: GB/T 36904 electronic-license identifiers and the two holder
// codes licenses are issued to (resident ID numbers and unified social
// credit codes). The license and exchange packages share it. The facts it
// encodes are those of the hub's domain reference (domain.md), section 2
// "License identifier" and section 5 "Holder code check digits".
//
// # License identifiers (GB/T 36904-2018, 电子证照标识)
//
//	1.2.156.3005.2 . <type code> . <issuer code> . <serial> . <version> . <check>
//
// e.g. 1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.U
//
//   - root: exactly [Root];
//   - type code (证照类型代码): 21 characters, the defining authority's
//     unified social credit code followed by a 3-digit sequence;
//   - issuer code (颁发机构代码): the issuing authority's unified social
//     credit code, 18 characters;
//   - serial (流水号): 1 to 64 digits and upper-case letters;
//   - version (版本号): 3 digits, 001 to 999;
//   - check (校验位): one character 0-9 or A-Z, ISO/IEC 7064 MOD 37,36
//     (hybrid system) over type code, issuer code, serial and version
//     concatenated without dots; see [CheckCharacter].
//
// [Parse] is strict and is what the hub uses for identifiers it generated.
// Legacy systems computed some check characters with non-standard routines;
// [ParseIgnoringCheck] enforces every other rule so that an importer can
// report (never silently repair) a wrong check character.
//
// # Holder codes
//
//   - resident ID number (公民身份号码, GB 11643, holder code type
//     [HolderResidentID] "111"): 6-digit region, 8-digit birth date,
//     3-digit sequence (odd = male), ISO/IEC 7064 MOD 11-2 check character
//     (a digit or X); see [ValidateResidentID].
//   - unified social credit code (统一社会信用代码, GB 32100, holder code type
//     [HolderCreditCode] "001"): 17 characters of [CreditCodeAlphabet] and a
//     MOD 31 check character; see [ValidateCreditCode].
//
// # Errors
//
// Every rejection is a *licensehub.Error with Code licensehub.EINVALID, a
// Message for people and Details["rule"] set to one of the Rule* constants,
// which are stable and safe for clients to match on. Field is left empty:
// the caller knows which JSON field it validated and can set it with
// [WithField]. [Rule] extracts the rule from any error.
//
// Further detail keys, present where they apply:
//
//   - "expected", "got": the expected and the actual character or value;
//   - "position": 1-based position of the offending character, counted
//     within the checked string (or identifier segment);
//   - "min", "max": the permitted length or value range;
//   - "cause": a more specific stable reason: for identifier segments the
//     rule that the segment broke (length, alphabet, check_digit) or, for
//     versions, range or exhausted (no version after 999); for birth dates
//     not_a_date, before_1900 or in_future.
//
// Messages about resident ID numbers never repeat the number itself, only
// the offending character or part, because it is personal data and error
// messages end up in logs.
package ident
