package ident

// AreaCodeLen is the length of an administrative division code (行政区划代码,
// GB/T 2260): two digits each for province, city and county.
const AreaCodeLen = 6

// IsAreaCode reports whether s is written as an administrative division
// code: 6 ASCII digits whose province part is not 00.
func IsAreaCode(s string) bool {
	if len(s) != AreaCodeLen || s[:2] == "00" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// AreaPrefix is the significant part of an area code: the code without
// its trailing "00" pairs. 430000 (湖南省) → 43, 430100 (长沙市) → 4301,
// 430102 (芙蓉区) → 430102.
func AreaPrefix(area string) string {
	for len(area) > 2 && area[len(area)-2:] == "00" {
		area = area[:len(area)-2]
	}
	return area
}

// AreaWithin reports whether the area code sub lies within area: sub
// starts with area's significant part, so 430100 (长沙市) holds 430100 and
// 430102 but not 430200, and 430000 (湖南省) holds every 43xxxx. An empty
// area is the whole country and holds every code.
func AreaWithin(area, sub string) bool {
	if area == "" {
		return true
	}
	p := AreaPrefix(area)
	return len(sub) == len(area) && len(sub) >= len(p) && sub[:len(p)] == p
}
