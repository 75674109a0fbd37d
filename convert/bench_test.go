package convert

import (
	"bytes"
	"fmt"
	"io"
	"testing"
)

// BenchmarkRequest converts one clean row of the business-license sample
// mapping, bound to the catalog (fifteen columns, four dates).
func BenchmarkRequest(b *testing.B) {
	m, err := LoadMapping("../configs/conversion/scjg-business-license.yaml")
	if err != nil {
		b.Fatal(err)
	}
	if err := m.BindCatalog(testCatalog(b)); err != nil {
		b.Fatal(err)
	}
	m.Clock = testClock
	row := Row{Line: 2, Values: map[string]string{
		"注册号": "430100000012345", "企业名称": "长沙示范科技有限公司", "统一社会信用代码": creditA, "企业类型": "有限",
		"法定代表人": "张三", "注册资本": "壹佰万元整", "成立日期": "2015年03月04日", "营业期限自": "2015年3月4日", "营业期限至": "长期",
		"住所": "湖南省长沙市岳麓区示范路1号", "经营范围": "软件开发；信息技术咨询服务。", "登记机关": "长沙市市场监督管理局", "发证日期": "2015年03月04日",
	}}
	b.ReportAllocs()
	for b.Loop() {
		if _, rj := m.Request(row, "job"); rj != nil {
			b.Fatal(rj)
		}
	}
}

// benchRegister is a register of n rows in the sample's columns.
func benchRegister(n int) string {
	var buf bytes.Buffer
	buf.WriteString("注册号,企业名称,统一社会信用代码,企业类型,法定代表人,注册资本,成立日期,营业期限自,营业期限至,住所,经营范围,登记机关,发证日期\r\n")
	for i := range n {
		fmt.Fprintf(&buf, "4301000%08d,长沙示范科技有限公司%d,%s,有限,张三,壹佰万元整,2015年03月04日,2015年3月4日,长期,湖南省长沙市岳麓区示范路%d号,\"软件开发；信息技术咨询服务。\",长沙市市场监督管理局,2015年03月04日\r\n",
			i, i, creditA, i)
	}
	return buf.String()
}

// BenchmarkCSVReader reads a 10,000-row register, UTF-8 and GB18030.
func BenchmarkCSVReader(b *testing.B) {
	text := benchRegister(10_000)
	for _, enc := range []struct {
		name string
		data []byte
	}{{"utf-8", []byte(text)}, {"gb18030", gb18030(b, text)}} {
		b.Run(enc.name, func(b *testing.B) {
			b.SetBytes(int64(len(enc.data)))
			b.ReportAllocs()
			for b.Loop() {
				r, err := OpenReader(bytes.NewReader(enc.data), int64(len(enc.data)), FormatCSV, "", "", 0)
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for {
					_, err := r.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					n++
				}
				if n != 10_000 {
					b.Fatalf("%d rows", n)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*10_000), "ns/row")
		})
	}
}
