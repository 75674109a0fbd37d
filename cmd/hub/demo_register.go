package main

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"

	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/licensehub/licensehub/auth"
)

// demoMapping is the configs/conversion mapping that reads the demo's
// legacy register: the market regulator's business register, exported as
// GB18030 CSV with Chinese headers.
const demoMapping = "scjg-business-license"

// legacyRegister is a small export of a legacy business register, as the
// old registration system wrote it: GB18030, Chinese headers, dates like
// 2016年5月12日, 长期 for an open-ended business term, the clerks'
// abbreviations (有限) for the entity type. Of its 20 rows, 18
// convert; the 19th repeats the 5th row's registration number (a
// duplicate) and the 20th has a credit code whose check character is
// wrong (BAD_HOLDER_CODE). The same bytes every time.
func legacyRegister() ([]byte, error) {
	type company struct{ name, kind, person, capital, address, scope string }
	companies := []company{
		{"长沙湘江软件有限公司", "有限责任公司（自然人投资或控股）", "李明", "伍佰万元整", "长沙市岳麓区麓谷大道1号", "软件开发；信息系统集成服务。"},
		{"长沙麓山茶业有限公司", "有限", "王芳", "壹佰万元整", "长沙市岳麓区桃花岭路8号", "茶叶种植；预包装食品销售。"},
		{"湖南星城建材有限公司", "有限责任公司（自然人投资或控股）", "张伟", "贰仟万元整", "长沙市雨花区建材路12号", "建筑材料销售。"},
		{"长沙橘洲文化传媒有限公司", "有限责任公司（自然人投资或控股）", "刘洋", "叁佰万元整", "长沙市天心区湘江中路66号", "广告设计、制作；文艺创作。"},
		{"长沙芙蓉餐饮管理有限公司", "有限责任公司（自然人独资）", "陈静", "伍拾万元整", "长沙市芙蓉区五一大道200号", "餐饮管理；餐饮服务。"},
		{"湖南潇湘物流有限公司", "有限责任公司（自然人投资或控股）", "杨帆", "壹仟万元整", "长沙市开福区金霞路3号", "道路货物运输；仓储服务。"},
		{"长沙岳麓教育咨询有限公司", "有限责任公司（自然人投资或控股）", "赵磊", "贰佰万元整", "长沙市岳麓区岳麓大道99号", "教育咨询服务。"},
		{"长沙梅溪湖科技有限公司", "有限责任公司（自然人投资或控股）", "黄丽", "伍佰万元整", "长沙市岳麓区梅溪湖路18号", "技术开发、技术咨询、技术服务。"},
		{"湖南湘绣工艺品有限公司", "有限责任公司（自然人独资）", "周敏", "捌拾万元整", "长沙市开福区湘绣路5号", "工艺美术品制造、销售。"},
		{"长沙望城农业发展有限公司", "有限责任公司（自然人投资或控股）", "吴强", "叁仟万元整", "长沙市望城区农业大道7号", "蔬菜种植；农产品收购。"},
		{"长沙浏阳河酒业有限公司", "有限责任公司（自然人投资或控股）", "徐刚", "壹仟伍佰万元整", "长沙市芙蓉区浏阳河路9号", "酒类销售。"},
		{"长沙天心医疗器械有限公司", "有限责任公司（自然人投资或控股）", "孙霞", "陆佰万元整", "长沙市天心区劳动西路88号", "第二类医疗器械销售。"},
		{"湖南雨花机械制造有限公司", "有限责任公司（自然人投资或控股）", "马超", "伍仟万元整", "长沙市雨花区环保中路16号", "通用设备制造。"},
		{"长沙开福旅游服务有限公司", "有限公司", "朱红", "叁拾万元整", "长沙市开福区湘春路21号", "旅游信息咨询；票务代理。"},
		{"长沙星沙汽车服务有限公司", "有限责任公司（自然人投资或控股）", "胡军", "贰佰伍拾万元整", "长沙县星沙大道100号", "汽车维修；汽车零配件销售。"},
		{"长沙洋湖生态农业有限公司", "有限责任公司（自然人投资或控股）", "郭婷", "肆佰万元整", "长沙市岳麓区洋湖大道6号", "花卉种植；生态农业观光。"},
		{"长沙黄花电子商务有限公司", "有限责任公司（自然人投资或控股）", "林涛", "壹佰万元整", "长沙县黄花镇空港路2号", "互联网销售。"},
		{"长沙坪塘印务有限公司", "有限责任公司（自然人独资）", "何平", "陆拾万元整", "长沙市岳麓区坪塘大道15号", "包装装潢印刷品印刷。"},
	}
	var out bytes.Buffer
	w := csv.NewWriter(&out)
	w.Write([]string{"注册号", "企业名称", "统一社会信用代码", "企业类型", "法定代表人", "注册资本", "成立日期", "营业期限自", "营业期限至",
		"住所", "经营范围", "登记机关", "发证日期"})
	row := func(i int, number, code string, c company) {
		founded := fmt.Sprintf("%d年%d月%d日", 2012+i%6, 1+i%12, 1+(i*7)%28)
		term := "长期"
		if i%3 == 0 {
			term = fmt.Sprintf("%d年12月31日", 2040+i%6)
		}
		w.Write([]string{number, c.name, code, c.kind, c.person, c.capital, founded, founded, term, c.address, c.scope,
			"长沙市市场监督管理局", founded})
	}
	number := func(i int) string { return fmt.Sprintf("4301000000%05d", 10000+i) }
	for i, c := range companies {
		row(i+1, number(i+1), creditCode(fmt.Sprintf("91430100MA4L%05d", 20000+i+1)), c)
	}
	// 19: the 5th row's registration number again, another company.
	row(19, number(5), creditCode("91430100MA4L20019"),
		company{"长沙芙蓉餐饮连锁有限公司", "有限责任公司（自然人独资）", "陈静", "伍拾万元整", "长沙市芙蓉区五一大道202号", "餐饮服务。"})
	// 20: a credit code with a wrong check character.
	bad := creditCode("91430100MA4L20020")
	bad = bad[:17] + map[bool]string{true: "1", false: "0"}[bad[17] == '0']
	row(20, number(20), bad,
		company{"长沙谷山陶瓷有限公司", "有限责任公司（自然人独资）", "罗娟", "贰拾万元整", "长沙市岳麓区谷山路4号", "陶瓷制品销售。"})
	w.Flush()
	if err := w.Error(); err != nil {
		return nil, err
	}
	return simplifiedchinese.GB18030.NewEncoder().Bytes(out.Bytes())
}

// printConversionSteps prints how to convert the demo register: in
// process with hubctl, and over the API with curl (the upload is signed
// over an empty body with the file's SM3 in the query; GETs have no body
// either, so one small signing function serves all three calls).
func printConversionSteps(w io.Writer, base string, f *demoFiles) {
	fmt.Fprintf(w, `
Stock-license conversion (存量证照): %[2]s is a legacy business register
(GB18030, 20 rows; row 19 repeats row 5's registration number, row 20 has a wrong check character):
  go run ./cmd/hubctl convert --mapping %[3]s --dry-run %[2]s   # checks every row, writes nothing
  go run ./cmd/hubctl convert --mapping %[3]s %[2]s             # converts; Ctrl-C and run it again: it resumes
  go run ./cmd/hubctl convert rejects JOB_ID                     # the rejected rows (line,field,code,message,number)

Or upload it to the hub, which converts it in the background (as the issuing system; README.md, "Stock-license conversion"):
  export HUBCTL_HUB=%[1]s HUBCTL_APP_ID=%[4]s HUBCTL_SECRET=%[5]s
  hubcurl() { local p=${2%%%%\?*} q= ts=$(date +%%s) n=$(openssl rand -hex 16); [[ $2 == *\?* ]] && q=${2#*\?}
    local s=$(printf '%%s\n%%s\n%%s\n%%s\n%%s\n%%s' "$1" "$p" "$q" "$ts" "$n" 1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b |
      openssl mac -digest SM3 -macopt key:"$HUBCTL_SECRET" -binary HMAC | base64)
    curl -sS -X "$1" -H "X-Hub-App-Id: $HUBCTL_APP_ID" -H "X-Hub-Timestamp: $ts" -H "X-Hub-Nonce: $n" -H "X-Hub-Signature: $s" ${3:+--data-binary @"$3"} "$HUBCTL_HUB$2"; }
  hubcurl POST "/v1/conversions?mapping=%[3]s&sm3=$(openssl dgst -sm3 -r %[2]s | cut -c1-64)" %[2]s   # 202: the job
  hubcurl GET /v1/conversions/JOB_ID            # state, counts (read, converted, duplicates, rejected by code), rate, ETA
  hubcurl GET /v1/conversions/JOB_ID/rejects    # CSV: line,field,code,message,number
`, base, f.Register, demoMapping, demoIssuerApp, auth.DemoSecret(demoIssuerApp))
}
