// A Java consumer reading one record the Python API published, the way a Spring/Kotlin
// service would: StringDeserializer + Jackson into the seed's AdEvent(adId, timestamp,
// impressions), ignoring fields it does not know (Spring's ObjectMapper default).
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.FileInputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.StringDeserializer;

public class JavaAdEventReader {
    public static class AdEvent {
        public String adId;
        public long timestamp;
        public int impressions;
    }

    public static void main(String[] args) throws Exception {
        Properties c = new Properties();
        try (FileInputStream in = new FileInputStream(args[0])) {
            c.load(in);
        }
        c.put("key.deserializer", StringDeserializer.class.getName());
        c.put("value.deserializer", StringDeserializer.class.getName());
        c.put("group.id", args[1]);
        c.put("enable.auto.commit", "false");
        ObjectMapper mapper = new ObjectMapper()
            .configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false);
        TopicPartition tp = new TopicPartition(args[2], Integer.parseInt(args[3]));
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(c)) {
            consumer.assign(List.of(tp));
            consumer.seek(tp, Long.parseLong(args[4]));
            long deadline = System.currentTimeMillis() + 20_000;
            while (System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
                    AdEvent event = mapper.readValue(r.value(), AdEvent.class);
                    System.out.println("key=" + r.key() + " adId=" + event.adId
                        + " timestamp=" + event.timestamp + " impressions=" + event.impressions);
                    for (Header h : r.headers()) {
                        System.out.println("header " + h.key() + "="
                            + new String(h.value(), StandardCharsets.UTF_8));
                    }
                    return;
                }
            }
        }
        System.err.println("record not consumed within 20s");
        System.exit(2);
    }
}
