# English dates as the newsletter has always printed them ("21 March 2026"), not Django's US
# default ("March 21, 2026"). Other languages use Django's own formats (zh-hans: "2026年3月21日").
DATE_FORMAT = "j F Y"
