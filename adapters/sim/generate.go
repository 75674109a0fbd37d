package sim

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/licensehub/licensehub/ident"
)

// world generates people and companies. Everything about a person or a
// company is a pure function of the seed, the holder code and the day
// (now): the same seed gives the same data in every process.
type world struct {
	seed     uint64
	notFound float64
	now      func() time.Time
}

var cst = time.FixedZone("CST", 8*60*60)

func (w world) today() time.Time {
	t := w.now().In(cst)
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// rng returns a generator seeded from the world's seed, a purpose and a key.
func (w world) rng(purpose, key string) *rand.Rand {
	h := sha256.Sum256(fmt.Appendf(nil, "%d\x00%s\x00%s", w.seed, purpose, key))
	return rand.New(rand.NewPCG(binary.BigEndian.Uint64(h[:8]), binary.BigEndian.Uint64(h[8:16])))
}

// exists reports whether the upstream knows the holder code (about
// 1 − notFound of valid codes).
func (w world) exists(code string) bool {
	return w.rng("exists", code).Float64() >= w.notFound
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func between(r *rand.Rand, lo, hi int) int { return lo + r.IntN(hi-lo+1) }

// ---- people ----

type person struct {
	ID         string
	Name       string
	Sex        ident.Sex
	Birth      time.Time
	Region     region
	Address    string
	Nation     string
	IssuedAt   time.Time
	ValidUntil string // YYYY-MM-DD or 长期
	Status     string
}

func sexName(s ident.Sex) string {
	if s == ident.SexMale {
		return "男"
	}
	return "女"
}

func genName(r *rand.Rand, sex ident.Sex, surname rune) string {
	given := givenFemale
	if sex == ident.SexMale {
		given = givenMale
	}
	if surname == 0 {
		surname = pick(r, surnames)
	}
	n := string(surname) + string(pick(r, given))
	if r.IntN(3) > 0 {
		n += string(pick(r, given))
	}
	return n
}

func genAddress(r *rand.Rand, reg region) string {
	return fmt.Sprintf("%s%s%d号%d栋%d单元%d%02d室", reg.Full(), pick(r, reg.Streets),
		between(r, 1, 399), between(r, 1, 20), between(r, 1, 4), between(r, 1, 28), between(r, 1, 6))
}

func age(birth, today time.Time) int {
	a := today.Year() - birth.Year()
	if today.YearDay() < birth.YearDay() {
		a--
	}
	return a
}

// person derives a person from a valid resident ID number.
func (w world) person(id string) person {
	r := w.rng("person", id)
	birth, _ := time.Parse("20060102", id[6:14])
	sex := ident.SexFemale
	if (id[16]-'0')%2 == 1 {
		sex = ident.SexMale
	}
	reg := regionFor(id[:6])
	if id[0] == '9' { // foreigner's permanent residence ID: region in digits 2-3
		reg = regionFor(id[1:3] + "0000")
	}
	p := person{ID: id, Sex: sex, Birth: birth, Region: reg, Status: "正常"}
	p.Name = genName(r, sex, 0)
	p.Address = genAddress(r, reg)
	p.Nation = "汉族"
	if r.IntN(10) == 0 {
		p.Nation = pick(r, nations)
	}
	// Validity of the identity card by age at issue (GB/T 17543-style
	// rules: <16: 5 years, 16-25: 10, 26-45: 20, 46+: long-term).
	today := w.today()
	years := 0
	issued := today.AddDate(0, 0, -between(r, 30, 3650))
	if issued.Before(birth) {
		issued = birth.AddDate(0, 0, between(r, 30, 365))
	}
	switch a := age(birth, issued); {
	case a < 16:
		years = 5
	case a < 26:
		years = 10
	case a < 46:
		years = 20
	}
	for years > 0 && issued.AddDate(years, 0, 0).Before(today) && r.IntN(20) > 0 {
		issued = issued.AddDate(years, 0, 0) // renewed (about 1 in 20 expired)
	}
	p.IssuedAt = issued
	p.ValidUntil = "长期"
	if years > 0 {
		p.ValidUntil = issued.AddDate(years, 0, 0).Format(time.DateOnly)
	}
	if r.IntN(50) == 0 {
		p.Status = "迁出"
	}
	return p
}

// makeID builds a valid resident ID number.
func makeID(r *rand.Rand, regionCode string, birth time.Time, sex ident.Sex) string {
	seq := r.IntN(500) * 2
	if sex == ident.SexMale {
		seq++
	}
	body := regionCode + birth.Format("20060102") + fmt.Sprintf("%03d", seq)
	c, err := ident.ResidentIDCheck(body)
	if err != nil {
		panic(err) // body is 17 digits by construction
	}
	return body + string(c)
}

func maskID(id string) string {
	if len(id) != 18 {
		return strings.Repeat("*", len(id))
	}
	return id[:6] + "********" + id[14:]
}

type member struct {
	Name, Relation, ID string
	Sex                ident.Sex
	Birth              time.Time
}

type household struct {
	Number  string
	Address string
	Head    member
	Members []member // the head first
}

func (w world) household(p person) household {
	r := w.rng("household", p.ID)
	today := w.today()
	self := member{Name: p.Name, ID: p.ID, Sex: p.Sex, Birth: p.Birth}
	h := household{Number: p.Region.Code[:min(6, len(p.Region.Code))] + fmt.Sprintf("%09d", r.IntN(1e9)), Address: p.Address}
	childRelation := func(s ident.Sex) string {
		if s == ident.SexMale {
			return "子"
		}
		return "女"
	}
	a := age(p.Birth, today)
	if a >= 30 || (a >= 22 && r.IntN(2) == 0) {
		self.Relation = "户主"
		h.Head = self
		h.Members = append(h.Members, self)
		if a >= 24 && r.IntN(5) > 0 { // spouse
			sb := p.Birth.AddDate(between(r, -3, 3), 0, between(r, -150, 150))
			ss := ident.SexMale + ident.SexFemale - p.Sex
			if sb.After(today.AddDate(-20, 0, 0)) {
				sb = today.AddDate(-20, 0, 0)
			}
			h.Members = append(h.Members, member{Name: genName(r, ss, 0), Relation: "配偶", Sex: ss, Birth: sb,
				ID: makeID(r, p.ID[:6], sb, ss)})
		}
		surname := []rune(p.Name)[0]
		if p.Sex == ident.SexFemale && len(h.Members) > 1 {
			surname = []rune(h.Members[1].Name)[0]
		}
		for range r.IntN(3) {
			cb := p.Birth.AddDate(between(r, 23, 35), 0, r.IntN(365))
			if !cb.Before(today) {
				break
			}
			cs := ident.Sex(1 + r.IntN(2))
			h.Members = append(h.Members, member{Name: genName(r, cs, surname), Relation: childRelation(cs), Sex: cs, Birth: cb,
				ID: makeID(r, p.ID[:6], cb, cs)})
		}
		return h
	}
	// A young person: the household head is a parent.
	hb := p.Birth.AddDate(-between(r, 24, 32), 0, -r.IntN(365))
	head := member{Name: genName(r, ident.SexMale, []rune(p.Name)[0]), Relation: "户主", Sex: ident.SexMale, Birth: hb}
	head.ID = makeID(r, p.ID[:6], hb, ident.SexMale)
	mb := hb.AddDate(between(r, 0, 4), 0, r.IntN(365))
	mother := member{Name: genName(r, ident.SexFemale, 0), Relation: "配偶", Sex: ident.SexFemale, Birth: mb}
	mother.ID = makeID(r, p.ID[:6], mb, ident.SexFemale)
	self.Relation = childRelation(p.Sex)
	h.Head = head
	h.Members = []member{head, mother, self}
	return h
}

// ---- companies ----

type company struct {
	Code          string
	Name          string
	Region        region
	Sector        string
	State         string // 正常 or 注销
	RegisteredAt  time.Time
	CancelledAt   time.Time // zero unless 注销
	TaxpayerType  string
	LegalRep      string
	Address       string
	Employees     int
	MonthlyVATFen int64
}

func (w world) company(code string) company {
	r := w.rng("company", code)
	reg := regionFor(code[2:8])
	ind := pick(r, industries)
	c := company{Code: code, Region: reg, Sector: ind.Sector, State: "正常"}
	brand := string(pick(r, brandSyllables)) + string(pick(r, brandSyllables))
	c.Name = reg.cityShort() + brand + ind.Name + "有限公司"
	if r.IntN(8) == 0 {
		c.Name = reg.cityShort() + brand + ind.Name + "股份有限公司"
	}
	today := w.today()
	c.RegisteredAt = time.Date(between(r, 1998, today.Year()-1), time.Month(between(r, 1, 12)), between(r, 1, 28), 0, 0, 0, 0, time.UTC)
	if c.RegisteredAt.After(today.AddDate(0, -3, 0)) {
		c.RegisteredAt = today.AddDate(0, -3, 0)
	}
	if r.IntN(12) == 0 {
		span := int(today.Sub(c.RegisteredAt).Hours() / 24)
		c.CancelledAt = c.RegisteredAt.AddDate(0, 0, span/2+r.IntN(max(1, span/2)))
		c.State = "注销"
	}
	c.Employees = []int{between(r, 3, 20), between(r, 20, 120), between(r, 120, 900)}[r.IntN(3)]
	c.TaxpayerType = "小规模纳税人"
	if c.Employees > 20 || r.IntN(3) == 0 {
		c.TaxpayerType = "一般纳税人"
	}
	c.MonthlyVATFen = int64(c.Employees) * int64(between(r, 800, 6000)) * 100
	c.LegalRep = genName(r, ident.Sex(1+r.IntN(2)), 0)
	c.Address = genAddress(r, reg)
	return c
}

// makeCreditCode builds a valid unified social credit code of an
// enterprise (9 1) registered in regionCode.
func makeCreditCode(r *rand.Rand, regionCode string) string {
	var b strings.Builder
	b.WriteString("91")
	b.WriteString(regionCode)
	for range 9 {
		b.WriteByte(ident.CreditCodeAlphabet[r.IntN(len(ident.CreditCodeAlphabet))])
	}
	c, err := ident.CreditCodeCheck(b.String())
	if err != nil {
		panic(err)
	}
	return b.String() + string(c)
}

// employer returns the credit code of a person's (existing, not cancelled)
// employer, in the person's region when the table knows it.
func (w world) employer(p person) company {
	r := w.rng("employer", p.ID)
	code := p.Region.Code
	if _, ok := regionByCode[code]; !ok {
		code = pick(r, regions).Code
	}
	var c company
	for range 100 {
		c = w.company(makeCreditCode(r, code))
		if w.exists(c.Code) && c.State == "正常" {
			break
		}
	}
	return c
}

// ---- social insurance ----

type insurance struct {
	Code, Name, State string
	Start             time.Time // first month
	Last              time.Time // last month paid
	Months            int
	Rate              float64
}

type insuranceRecord struct {
	Number   string
	State    string // 正常参保, 暂停, 终止, 未参保
	Employer company
	BaseFen  int64
	Kinds    []insurance
}

func monthsBetween(a, b time.Time) int {
	return (b.Year()-a.Year())*12 + int(b.Month()) - int(a.Month()) + 1
}

func firstOfMonth(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

func (w world) insurance(p person) insuranceRecord {
	r := w.rng("insurance", p.ID)
	today := w.today()
	rec := insuranceRecord{Number: p.ID[:6] + fmt.Sprintf("%010d", r.IntN(1e10)), State: "未参保"}
	start := firstOfMonth(p.Birth.AddDate(between(r, 18, 24), between(r, 0, 11), 0))
	if floor := time.Date(1995, 1, 1, 0, 0, 0, 0, time.UTC); start.Before(floor) {
		start = floor.AddDate(0, r.IntN(24), 0)
	}
	lastMonth := firstOfMonth(today).AddDate(0, -1, 0)
	if age(p.Birth, today) < 16 || start.After(lastMonth) {
		return rec
	}
	rec.Employer = w.employer(p)
	rec.BaseFen = int64(between(r, 3500, 25000)) * 100
	switch x := r.IntN(100); {
	case x < 85:
		rec.State = "正常参保"
	case x < 95:
		rec.State = "暂停"
	default:
		rec.State = "终止"
	}
	last := lastMonth
	if rec.State != "正常参保" {
		last = lastMonth.AddDate(0, -between(r, 1, 24), 0)
		if last.Before(start) {
			last = start
		}
	}
	gaps := r.IntN(7)
	for i, k := range insuranceKinds {
		ks := start
		if i > 0 && r.IntN(4) == 0 {
			ks = start.AddDate(0, between(r, 1, 36), 0)
			if ks.After(last) {
				ks = last
			}
		}
		months := max(1, monthsBetween(ks, last)-gaps)
		rec.Kinds = append(rec.Kinds, insurance{Code: k.Code, Name: k.Name, State: rec.State,
			Start: ks, Last: last, Months: months, Rate: k.Rate})
	}
	return rec
}

// ---- tax ----

type payment struct {
	Period  string // YYYY-MM
	Item    string
	Fen     int64
	PaidOn  string
	Voucher string
}

// payments lists c's tax payments for month m (first of month).
func (w world) payments(c company, m time.Time) []payment {
	today := w.today()
	if m.Before(firstOfMonth(c.RegisteredAt)) || !m.Before(firstOfMonth(today)) {
		return nil
	}
	if c.State == "注销" && m.After(c.CancelledAt) {
		return nil
	}
	period := m.Format("2006-01")
	r := w.rng("payments", c.Code+"|"+period)
	if r.IntN(20) == 0 {
		return nil // a month with nothing due
	}
	paid := m.AddDate(0, 1, between(r, 5, 14))
	if !paid.Before(today) {
		return nil // not paid yet
	}
	voucher := func(i int) string {
		return fmt.Sprintf("3%s%s%02d%06d", c.Region.Code[:min(2, len(c.Region.Code))], m.Format("200601"), i, r.IntN(1e6))
	}
	var out []payment
	add := func(item string, fen int64) {
		if fen > 0 {
			out = append(out, payment{period, item, fen, paid.Format(time.DateOnly), voucher(len(out))})
		}
	}
	vat := c.MonthlyVATFen * int64(between(r, 60, 140)) / 100
	if c.TaxpayerType == "小规模纳税人" {
		vat /= 3
	}
	vat += int64(r.IntN(100)) // fen
	add("增值税", vat)
	add("城市维护建设税", vat*7/100)
	add("教育费附加", vat*3/100)
	add("个人所得税", int64(c.Employees)*int64(between(r, 50, 400))*100+int64(r.IntN(100)))
	if m.Month()%3 == 1 { // quarterly prepayment of corporate income tax
		add("企业所得税", vat*int64(between(r, 40, 120))/100+int64(r.IntN(100)))
	}
	return out
}

func yuan(fen int64) string {
	sign := ""
	if fen < 0 {
		sign, fen = "-", -fen
	}
	return sign + strconv.FormatInt(fen/100, 10) + "." + fmt.Sprintf("%02d", fen%100)
}

// creditGrade returns c's taxpayer credit grade for year, or "" when the
// year has not been rated (before registration, or not yet published).
func (w world) creditGrade(c company, year int) (grade string, ratedOn time.Time) {
	today := w.today()
	published := time.Date(year+1, time.April, 20, 0, 0, 0, 0, time.UTC)
	if year < c.RegisteredAt.Year() || published.After(today) {
		return "", time.Time{}
	}
	if c.State == "注销" && year > c.CancelledAt.Year() {
		return "", time.Time{}
	}
	if year == c.RegisteredAt.Year() {
		return "M", published // newly established
	}
	r := w.rng("credit", c.Code)
	base := r.IntN(100) // a company keeps roughly its grade over the years
	y := w.rng("credit", fmt.Sprintf("%s|%d", c.Code, year))
	x := (base*3 + y.IntN(100)) / 4
	switch {
	case x < 30:
		grade = "A"
	case x < 78:
		grade = "B"
	case x < 88:
		grade = "M"
	case x < 96:
		grade = "C"
	default:
		grade = "D"
	}
	return grade, published
}

// ---- samples ----

func (w world) samplePeople(n int) []string {
	r := w.rng("sample-people", "")
	seen := map[string]bool{}
	var out []string
	for len(out) < n {
		reg := pick(r, regions)
		birth := time.Date(between(r, 1960, 2003), time.Month(between(r, 1, 12)), between(r, 1, 28), 0, 0, 0, 0, time.UTC)
		id := makeID(r, reg.Code, birth, ident.Sex(1+r.IntN(2)))
		if !seen[id] && w.exists(id) {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

func (w world) sampleCompanies(n int) []string {
	r := w.rng("sample-companies", "")
	seen := map[string]bool{}
	var out []string
	for len(out) < n {
		code := makeCreditCode(r, pick(r, regions).Code)
		if !seen[code] && w.exists(code) && w.company(code).State == "正常" {
			seen[code] = true
			out = append(out, code)
		}
	}
	return out
}
