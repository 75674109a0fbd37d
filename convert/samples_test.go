package convert

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/licensehub/licensehub/catalog"
	"github.com/licensehub/licensehub/license"
)

var update = flag.Bool("update", false, "rewrite testdata/ from the sources in the tests")

// registerGB18030 is testdata/scjg-business-license-gb18030.csv in UTF-8:
// the market regulator's register as configs/conversion/
// scjg-business-license.yaml reads it, with the dirt such exports have.
const registerGB18030 = "注册号,企业名称,统一社会信用代码,企业类型,法定代表人,注册资本,成立日期,营业期限自,营业期限至,住所,经营范围,登记机关,发证日期\r\n" +
	// 2: clean, 年月日 dates, 长期, abbreviated type
	"430100000012345,长沙示范科技有限公司,91430100MA4L0000X9,有限,张三,壹佰万元整,2015年03月04日,2015年3月4日,长期,湖南省长沙市岳麓区示范路1号,软件开发；信息技术咨询服务。,长沙市市场监督管理局,2015年03月04日\r\n" +
	// 3: ISO and slash dates, a business term with an end, a quoted scope with a comma
	"430100000023456,湖南样例商贸有限公司,91430104MA4L1234AK,有限责任公司（自然人投资或控股）,李四,500万元,2016-05-20,2016-05-20,2036-05-19,长沙市芙蓉区样例路2号,\"日用百货销售,五金产品零售。\",长沙市芙蓉区市场监督管理局,2016/5/20\r\n" +
	// 4: credit code with a wrong check character
	"430100000034567,长沙错码贸易有限公司,91430104MA4L1234AA,有限,王五,100万元,2017-01-05,2017-01-05,长期,长沙市开福区某路3号,贸易。,长沙市开福区市场监督管理局,2017-01-05\r\n" +
	// 5: an issue date that is no date
	"430100000045678,长沙某某餐饮有限公司,91430111MA4PQ56785,有限,赵六,50万元,2018-02-01,2018-02-01,长期,长沙市雨花区某路4号,餐饮服务。,长沙市雨花区市场监督管理局,2018年13月01日\r\n" +
	// 6: no enterprise name
	"430100000056789,,91430103MA4R2D3E41,有限,钱七,10万元,2019-03-01,2019-03-01,长期,长沙市某路5号,咨询。,长沙市市场监督管理局,20190301\r\n" +
	// 7: a full-width number and full-width spaces around the name
	"４３０１０００００００６７８９,　长沙全角科技有限公司　,91430105MA4T7K8L9L,有限,孙八,200万元,2019.4.2,2019.4.2,永久,长沙市某路6号,技术服务。,长沙市市场监督管理局,2019.4.2\r\n" +
	// 8: a bare quote: the record cannot be read
	"430100000078901,长沙\"引号\"有限公司,91430100MA4L0000X9,有限,周九,1万元,2020-01-01,2020-01-01,长期,长沙市某路7号,服务。,长沙市市场监督管理局,2020-01-01\r\n" +
	// 9: a field missing
	"430100000089012,长沙缺列有限公司,91430100MA4L0000X9,有限,吴十,1万元,2020-01-01,2020-01-01,长期,长沙市某路8号,服务。,2020-01-01\r\n" +
	// 10: an issue date in the next century (a typo)
	"430100000090123,长沙未来有限公司,91430100MA4L0000X9,有限,郑一,1万元,2020-01-01,2020-01-01,长期,长沙市某路9号,服务。,长沙市市场监督管理局,2102-01-01\r\n"

// registerJSONL is testdata/scjg-business-license.jsonl, the newer
// system's export as configs/conversion/scjg-business-license-jsonl.yaml
// reads it.
const registerJSONL = `{"zzbh":"91430100MA4L0000X9-01","qymc":"长沙示范科技有限公司","tyshxydm":"91430100MA4L0000X9","qylx":"有限责任公司（自然人投资或控股）","fddbr":"张三","zczb":100,"clrq":"20210304","yyqxz":"20210304","yyqxzhi":"99991231","zs":"湖南省长沙市岳麓区示范路1号","jyfw":"软件开发。","djjg":"长沙市市场监督管理局","fzrq":"20210304","xzqhdm":"430104"}
{"zzbh":"91430104MA4L1234AK-01","qymc":"湖南样例商贸有限公司","tyshxydm":"91430104mA4L1234AK","qylx":"有限责任公司","fddbr":"李四","zczb":5e2,"clrq":"2022-05-20","yyqxz":"2022-05-20","yyqxzhi":"2042-05-19","zs":"长沙市芙蓉区样例路2号","jyfw":"日用百货销售。","djjg":"长沙市芙蓉区市场监督管理局","fzrq":"2022-05-20","xzqhdm":null}
{"zzbh":"3","qymc":"嵌套有限公司","extra":{"a":1}}

{"zzbh":"91430111MA4PQ56785-01","qymc":"长沙某某餐饮有限公司","tyshxydm":"91430111MA4PQ56785","qylx":"有限责任公司","fddbr":"赵六","clrq":"2023-02-01","yyqxzhi":"99991231","zs":"长沙市雨花区某路4号","jyfw":"餐饮服务。","djjg":"长沙市雨花区市场监督管理局","fzrq":"2023-02-30"}
`

// testdataFile returns testdata/name, rewriting it from content with
// -update; the committed file must equal content.
func testdataFile(t *testing.T, name string, content []byte) []byte {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -run %s -update writes it)", err, t.Name())
	}
	if !bytes.Equal(got, content) {
		t.Fatalf("%s differs from the test's source; go test -run %s -update rewrites it", path, t.Name())
	}
	return got
}

// outcome is one row's result: accepted, or a reject code and field.
type outcome struct {
	line        int
	code, field string
}

// convertAll reads a source with a sample mapping bound to the catalog;
// every accepted request must satisfy the catalog.
func convertAll(t *testing.T, mappingFile string, data []byte) (map[int]license.PushRequest, []outcome) {
	t.Helper()
	m, err := LoadMapping(filepath.Join("../configs/conversion", mappingFile))
	if err != nil {
		t.Fatal(err)
	}
	cat := testCatalog(t)
	if err := m.BindCatalog(cat); err != nil {
		t.Fatal(err)
	}
	m.Clock = testClock
	typ, _ := cat.Type(m.LicenseType)
	r, err := OpenReader(bytes.NewReader(data), int64(len(data)), m.Format, m.Encoding, m.Sheet, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rows, bad, fatal := readAll(t, r)
	if fatal != nil {
		t.Fatal(fatal)
	}
	accepted := map[int]license.PushRequest{}
	var out []outcome
	for _, e := range bad {
		rj := e.Reject()
		out = append(out, outcome{rj.Line, rj.Code, rj.Field})
	}
	for _, row := range rows {
		req, rj := m.Request(row, "job-1")
		if rj != nil {
			out = append(out, outcome{rj.Line, rj.Code, rj.Field})
			continue
		}
		out = append(out, outcome{line: row.Line})
		accepted[row.Line] = req
		checkAgainstCatalog(t, typ, req)
	}
	return accepted, out
}

// checkAgainstCatalog validates the body the library would build.
func checkAgainstCatalog(t *testing.T, typ *catalog.Type, req license.PushRequest) {
	t.Helper()
	lic := &license.License{TypeCode: req.TypeCode, Holder: req.Holder, Fields: req.Fields,
		IssueDate: req.IssueDate, ValidFrom: req.ValidFrom, ValidUntil: req.ValidUntil}
	if errs := typ.ValidateAll(lic); len(errs) > 0 {
		t.Errorf("line %d: the catalog refuses the converted license: %v", req.Provenance.SourceLine, errs)
	}
}

func sortOutcomes(o []outcome) string {
	var b strings.Builder
	for line := 1; line < 100; line++ {
		for _, x := range o {
			if x.line == line {
				b.WriteString(strings.TrimSpace(fmt.Sprintf("%02d %s %s", x.line, x.code, x.field)) + "; ")
			}
		}
	}
	return b.String()
}

func TestSampleBusinessLicenseCSV(t *testing.T) {
	data := testdataFile(t, "scjg-business-license-gb18030.csv", gb18030(t, registerGB18030))
	accepted, out := convertAll(t, "scjg-business-license.yaml", data)
	want := "02; 03; 04 BAD_HOLDER_CODE holder.code; 05 BAD_DATE issue_date; 06 MISSING_FIELD holder.name; 07; " +
		"08 MALFORMED_ROW; 09 MALFORMED_ROW; 10 BAD_DATE issue_date; "
	if got := sortOutcomes(out); got != want {
		t.Errorf("outcomes\n got %s\nwant %s", got, want)
	}
	r2 := accepted[2]
	if r2.Number != "430100000012345" || r2.IssueDate != "2015-03-04" || r2.ValidUntil != "" ||
		r2.Fields["entity_type"] != "有限责任公司" || r2.Fields["business_term_to"] != license.LongTerm ||
		r2.Fields["established_date"] != "2015-03-04" || r2.Holder.CodeType != "001" || r2.AreaCode != "430100" {
		t.Errorf("line 2: %+v", r2)
	}
	if pv := r2.Provenance; pv.Source != "scjg-business-license" || pv.Batch != "job-1" || pv.SourceLine != 2 || pv.OriginalIssueDate != "2015年03月04日" {
		t.Errorf("provenance %+v", pv)
	}
	if r3 := accepted[3]; r3.IssueDate != "2016-05-20" || r3.Fields["business_scope"] != "日用百货销售,五金产品零售。" || r3.Fields["business_term_to"] != "2036-05-19" {
		t.Errorf("line 3: %+v", r3)
	}
	if r7 := accepted[7]; r7.Number != "430100000006789" || r7.Holder.Name != "长沙全角科技有限公司" || r7.Fields["business_term_to"] != license.LongTerm {
		t.Errorf("line 7: %+v", r7)
	}
}

func TestSampleBusinessLicenseJSONL(t *testing.T) {
	data := testdataFile(t, "scjg-business-license.jsonl", []byte(registerJSONL))
	accepted, out := convertAll(t, "scjg-business-license-jsonl.yaml", data)
	want := "01; 02; 03 MALFORMED_ROW; 05 BAD_DATE issue_date; "
	if got := sortOutcomes(out); got != want {
		t.Errorf("outcomes\n got %s\nwant %s", got, want)
	}
	if r := accepted[1]; r.AreaCode != "430104" || r.Fields["registered_capital"] != "100" || r.Fields["business_term_to"] != license.LongTerm || r.ValidUntil != license.LongTerm {
		t.Errorf("line 1: %+v", r)
	}
	if r := accepted[2]; r.AreaCode != "430100" || r.Fields["registered_capital"] != "500" || r.Holder.Code != creditB || r.Fields["established_date"] != "2022-05-20" {
		t.Errorf("line 2: %+v", r)
	}
}

func TestSampleFoodPermitXLSX(t *testing.T) {
	accepted, out := convertAll(t, "scjg-food-permit.yaml", permitWorkbook(t))
	if got, want := sortOutcomes(out), "03; 05; "; got != want {
		t.Errorf("outcomes\n got %s\nwant %s", got, want)
	}
	r3 := accepted[3]
	if r3.IssueDate != "2020-05-06" || r3.ValidUntil != "2025-05-05" || r3.Fields["main_business_format"] != "餐饮服务经营者" ||
		r3.Fields["online_operation"] != false || r3.Fields["complaint_hotline"] != "12315" {
		t.Errorf("row 3: %+v", r3)
	}
	r5 := accepted[5]
	if r5.Number != "JY14301000005678" || r5.IssueDate != "2021-07-08" || r5.ValidUntil != "2026-07-07" ||
		r5.Fields["online_operation"] != true || r5.Fields["main_business_format"] != "食品销售经营者" || r5.Holder.Name != "长沙样例超市有限公司" {
		t.Errorf("row 5: %+v", r5)
	}
}
