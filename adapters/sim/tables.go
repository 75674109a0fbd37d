package sim

// region is a county-level division of GB/T 2260 (the first 6 digits of a
// resident ID number or digits 3-8 of a credit code).
type region struct {
	Code     string
	Province string // empty for the four municipalities
	City     string
	District string
	Streets  []string
}

// Full is the address prefix, e.g. 湖南省长沙市岳麓区.
func (r region) Full() string { return r.Province + r.City + r.District }

// cityShort is the city name without 市, for company names (长沙).
func (r region) cityShort() string {
	c := []rune(r.City)
	if r.City == "" {
		c = []rune(r.Province)[:2]
	}
	if len(c) > 1 && c[len(c)-1] == '市' {
		return string(c[:len(c)-1])
	}
	return r.City
}

// PoliceOffice is the issuing office of identity cards in r.
func (r region) PoliceOffice() string {
	if r.City == "" {
		return r.Province + "公安厅"
	}
	if r.District == "" {
		return r.City + "公安局"
	}
	d := []rune(r.District)
	return r.City + "公安局" + string(d[:len(d)-1]) + "分局"
}

// TaxAuthority is the competent tax office in r.
func (r region) TaxAuthority() string {
	if r.City == "" {
		return "国家税务总局" + r.Province + "税务局"
	}
	return "国家税务总局" + r.City + r.District + "税务局"
}

var regions = []region{
	{"110101", "", "北京市", "东城区", []string{"东直门南大街", "东四十条", "和平里西街"}},
	{"110105", "", "北京市", "朝阳区", []string{"建国路", "朝阳北路", "望京街", "东三环中路"}},
	{"110108", "", "北京市", "海淀区", []string{"中关村大街", "学院路", "知春路"}},
	{"120101", "", "天津市", "和平区", []string{"南京路", "滨江道", "成都道"}},
	{"310101", "", "上海市", "黄浦区", []string{"南京东路", "淮海中路", "西藏南路"}},
	{"310104", "", "上海市", "徐汇区", []string{"漕溪北路", "肇嘉浜路", "虹桥路"}},
	{"310115", "", "上海市", "浦东新区", []string{"世纪大道", "张杨路", "锦绣路", "东方路"}},
	{"500103", "", "重庆市", "渝中区", []string{"解放碑路", "中山三路", "民族路"}},
	{"320102", "江苏省", "南京市", "玄武区", []string{"中山路", "北京东路", "龙蟠路"}},
	{"320505", "江苏省", "苏州市", "虎丘区", []string{"长江路", "狮山路", "滨河路"}},
	{"330102", "浙江省", "杭州市", "上城区", []string{"解放路", "延安路", "望江路"}},
	{"330106", "浙江省", "杭州市", "西湖区", []string{"文三路", "天目山路", "古墩路", "学院路"}},
	{"340104", "安徽省", "合肥市", "蜀山区", []string{"长江西路", "黄山路", "潜山路"}},
	{"350102", "福建省", "福州市", "鼓楼区", []string{"五四路", "杨桥中路", "湖东路"}},
	{"350203", "福建省", "厦门市", "思明区", []string{"湖滨南路", "厦禾路", "莲前西路"}},
	{"360102", "江西省", "南昌市", "东湖区", []string{"八一大道", "阳明路", "叠山路"}},
	{"370102", "山东省", "济南市", "历下区", []string{"泉城路", "经十路", "解放路"}},
	{"370202", "山东省", "青岛市", "市南区", []string{"香港中路", "山东路", "中山路"}},
	{"410105", "河南省", "郑州市", "金水区", []string{"花园路", "农业路", "纬五路"}},
	{"420106", "湖北省", "武汉市", "武昌区", []string{"中南路", "武珞路", "中北路", "友谊大道"}},
	{"430102", "湖南省", "长沙市", "芙蓉区", []string{"五一大道", "韶山北路", "八一路"}},
	{"430103", "湖南省", "长沙市", "天心区", []string{"芙蓉中路", "劳动西路", "湘府中路"}},
	{"430104", "湖南省", "长沙市", "岳麓区", []string{"麓山南路", "桐梓坡路", "枫林三路", "金星中路"}},
	{"430105", "湖南省", "长沙市", "开福区", []string{"芙蓉中路", "湘江中路", "三一大道"}},
	{"430111", "湖南省", "长沙市", "雨花区", []string{"韶山中路", "万家丽中路", "劳动东路"}},
	{"440103", "广东省", "广州市", "荔湾区", []string{"中山八路", "龙津西路", "芳村大道"}},
	{"440106", "广东省", "广州市", "天河区", []string{"天河路", "体育西路", "黄埔大道", "珠江新城华夏路"}},
	{"440305", "广东省", "深圳市", "南山区", []string{"深南大道", "科技园南路", "南海大道"}},
	{"450103", "广西壮族自治区", "南宁市", "青秀区", []string{"民族大道", "东葛路", "金湖路"}},
	{"510104", "四川省", "成都市", "锦江区", []string{"春熙路", "东大街", "红星路"}},
	{"510107", "四川省", "成都市", "武侯区", []string{"人民南路", "科华北路", "武侯祠大街"}},
	{"530102", "云南省", "昆明市", "五华区", []string{"人民中路", "东风西路", "青年路"}},
	{"610113", "陕西省", "西安市", "雁塔区", []string{"长安南路", "小寨东路", "科技路"}},
	{"210102", "辽宁省", "沈阳市", "和平区", []string{"中华路", "南京北街", "三好街"}},
	{"230102", "黑龙江省", "哈尔滨市", "道里区", []string{"中央大街", "友谊路", "经纬街"}},
}

// provinces names the province-level code (first two digits).
var provinces = map[string]string{
	"11": "北京市", "12": "天津市", "13": "河北省", "14": "山西省", "15": "内蒙古自治区",
	"21": "辽宁省", "22": "吉林省", "23": "黑龙江省",
	"31": "上海市", "32": "江苏省", "33": "浙江省", "34": "安徽省", "35": "福建省", "36": "江西省", "37": "山东省",
	"41": "河南省", "42": "湖北省", "43": "湖南省", "44": "广东省", "45": "广西壮族自治区", "46": "海南省",
	"50": "重庆市", "51": "四川省", "52": "贵州省", "53": "云南省", "54": "西藏自治区",
	"61": "陕西省", "62": "甘肃省", "63": "青海省", "64": "宁夏回族自治区", "65": "新疆维吾尔自治区",
	"71": "台湾省", "81": "香港特别行政区", "82": "澳门特别行政区", "83": "台湾省",
}

var regionByCode = func() map[string]region {
	m := make(map[string]region, len(regions))
	for _, r := range regions {
		m[r.Code] = r
	}
	return m
}()

// regionFor returns the region of a 6-character code: a known one, or a
// province-level stand-in for codes the table does not list.
func regionFor(code string) region {
	if r, ok := regionByCode[code]; ok {
		return r
	}
	prov, ok := provinces[code[:min(2, len(code))]]
	if !ok {
		prov = "湖南省"
	}
	return region{Code: code, Province: prov, City: "", District: "",
		Streets: []string{"人民路", "建设路", "解放路", "中山路", "新华路"}}
}

var surnames = []rune("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤")

var (
	givenMale   = []rune("伟强磊军洋勇杰涛明超斌辉刚鹏飞宇浩峰建华志文博俊凯晨鑫毅国栋家豪子轩")
	givenFemale = []rune("芳娜敏静丽艳娟霞燕玲婷雪慧颖琳晶倩欣怡梦瑶佳雨涵思宁婉秀兰萍丹")
)

var nations = []string{"壮族", "回族", "满族", "维吾尔族", "苗族", "彝族", "土家族", "藏族", "蒙古族", "侗族", "瑶族", "白族"}

var brandSyllables = []rune("恒信达盛华泰鑫瑞宏远博通安康兴隆海天创新和美嘉禾立德永丰金源中正")

var industries = []struct{ Name, Sector string }{
	{"科技", "软件和信息技术服务业"},
	{"建筑工程", "房屋建筑业"},
	{"商贸", "批发业"},
	{"餐饮管理", "餐饮业"},
	{"物流", "道路运输业"},
	{"医药", "医药制造业"},
	{"机械制造", "通用设备制造业"},
	{"文化传媒", "广播、电视、电影和录音制作业"},
	{"食品", "食品制造业"},
	{"物业管理", "房地产业"},
}

// Social insurance kinds: the national codes of 险种类型.
var insuranceKinds = []struct {
	Code, Name string
	Rate       float64 // the person's own contribution rate
}{
	{"110", "养老", 0.08},
	{"310", "医疗", 0.02},
	{"210", "失业", 0.005},
	{"410", "工伤", 0},
	{"510", "生育", 0},
}
